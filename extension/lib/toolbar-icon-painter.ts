import { toolbarIconPaths, type IconPaths, type ToolbarState, type ToolbarTheme } from './toolbar-icon';

/** What the painter last put on the toolbar (kept in `storage.session`: for the e2e tests and for debugging). */
export type ToolbarIconRecord = { state: ToolbarState; theme: ToolbarTheme; path: IconPaths };
export const TOOLBAR_ICON_RECORD_KEY = 'look:toolbarIcon';

export type ToolbarIconPainterOptions = {
  /** `action.setIcon` (Chrome) or `browserAction.setIcon` (Firefox); rejects when a picture is missing. */
  setIcon(details: { path: IconPaths }): Promise<void>;
  /** Keeps the record of what was painted. */
  record(record: ToolbarIconRecord): Promise<void>;
  onError?(error: unknown): void;
};

/**
 * Puts the picture for the current state and toolbar theme on the toolbar. Nothing is painted until both are
 * known (the theme comes from storage, a moment after the worker starts), calls never overlap, a burst of
 * changes paints the last one only once, and an unchanged picture is not set again.
 */
export class ToolbarIconPainter {
  private wantedState: ToolbarState | undefined;
  private wantedTheme: ToolbarTheme | undefined;
  private painted: { state: ToolbarState; theme: ToolbarTheme } | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly options: ToolbarIconPainterOptions) {}

  show(state: ToolbarState): Promise<void> {
    this.wantedState = state;
    return this.schedule();
  }

  setTheme(theme: ToolbarTheme): Promise<void> {
    this.wantedTheme = theme;
    return this.schedule();
  }

  /** The theme stored before this worker started; a change reported meanwhile is newer and wins. */
  setInitialTheme(theme: ToolbarTheme): Promise<void> {
    return this.wantedTheme === undefined ? this.setTheme(theme) : this.chain;
  }

  private schedule(): Promise<void> {
    this.chain = this.chain.then(() => this.paint());
    return this.chain;
  }

  private async paint(): Promise<void> {
    const state = this.wantedState;
    const theme = this.wantedTheme;
    if (state === undefined || theme === undefined) return;
    if (this.painted?.state === state && this.painted.theme === theme) return;
    const path = toolbarIconPaths(state, theme);
    try {
      await this.options.setIcon({ path });
      this.painted = { state, theme };
      await this.options.record({ state, theme, path });
    } catch (error) {
      this.options.onError?.(error);
    }
  }
}
