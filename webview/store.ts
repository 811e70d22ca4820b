/**
 * The webview's one state store. Views subscribe and redraw from the state; actions go through `update`.
 * Listeners get the set of keys that changed, so a colour change repaints without a new layout.
 */
import type { NamedProfile } from './contract';
import type { MetricId } from './metrics';
import type { GraphModel } from './model';
import type { Theme } from './protocol';

export interface ViewState {
  model: GraphModel | null;
  graphPath: string | null;
  profiles: NamedProfile[];
  /** Index into `profiles` of the profile that colours the graph; null: no heatmap. */
  profileIndex: number | null;
  metric: MetricId;
  /** Index of the "before" profile when comparing (colours by `profiles[profileIndex] / profiles[compareIndex]`). */
  compareIndex: number | null;
  collapsed: ReadonlySet<string>;
  selected: string | null;
  query: string;
  results: string[];
  resultIndex: number;
  theme: Theme;
  /** Layout progress, for the status line and for tests. */
  layout: { state: 'idle' | 'running' | 'done' | 'error'; ms?: number; message?: string };
}

export type Listener = (state: ViewState, changed: ReadonlySet<keyof ViewState>) => void;

export class Store {
  private state: ViewState;
  private readonly listeners: Listener[] = [];

  constructor(initial: ViewState) {
    this.state = initial;
  }

  get(): ViewState {
    return this.state;
  }

  update(patch: Partial<ViewState>): void {
    const changed = new Set<keyof ViewState>();
    for (const key of Object.keys(patch) as (keyof ViewState)[]) if (patch[key] !== this.state[key]) changed.add(key);
    if (!changed.size) return;
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l(this.state, changed);
  }

  subscribe(listener: Listener): void {
    this.listeners.push(listener);
  }
}

export function initialState(): ViewState {
  return {
    model: null,
    graphPath: null,
    profiles: [],
    profileIndex: null,
    metric: 'time',
    compareIndex: null,
    collapsed: new Set(),
    selected: null,
    query: '',
    results: [],
    resultIndex: -1,
    theme: 'dark',
    layout: { state: 'idle' },
  };
}
