/** `AIT: Select Target`: sets `ait.defaultTarget` (user setting), which the status bar shows. */
import { readSettings } from '../settings';
import { TARGETS } from '../targets';
import type { CommandContext } from './context';

export async function selectTargetCommand(ctx: CommandContext): Promise<string | undefined> {
  const current = readSettings(ctx.settings).settings.defaultTarget;
  const item = await ctx.ui.pick(
    TARGETS.map((t) => ({ label: t.id, description: t.id === current ? `${t.detail} · current` : t.detail, id: t.id })),
    { title: 'Default compile target' },
  );
  if (!item) return undefined;
  await ctx.settings.update('defaultTarget', item.id);
  ctx.status.setTarget(item.id);
  return item.id;
}
