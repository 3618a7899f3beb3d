import { Emitter } from '@underpass/shared/emitter';
import type { EngineEvent, EngineStatus, SwitchAction, SwitchName, SwitchState } from './messages';
import type { Settings } from './settings';

/** What a switch resumes from after a worker restart. */
export type ResumeInput = {
  /** Whether the user has the switch on. */
  wanted: boolean;
  /** The state the previous worker stored. */
  stored: SwitchState;
  /** What the engines' host still runs; undefined when there is no host. */
  engines: EngineStatus | undefined;
};

/**
 * One feature's switch in the background (Protect, Volunteer, …): it owns the feature's state and every side
 * effect of turning it on and off. The SwitchRunner calls these methods one at a time, never two at once.
 * A new feature is a new class implementing this, listed with the others in entrypoints/background.ts.
 */
export interface FeatureSwitch extends Emitter<{ change: [state: SwitchState] }> {
  readonly name: SwitchName;
  readonly state: SwitchState;
  /** True while the feature uses the engines' host: the host is released only when no switch is running. */
  readonly running: boolean;
  start(): Promise<void>;
  /** Stops the feature and shows `final` (off, or an error that says why). */
  stop(final: SwitchState): Promise<void>;
  /**
   * Brings a (re)started worker in line with what the user asked for and what the engines' host still runs
   * (`engines` is undefined when there is no host). A switch that ended in an error stays there until the
   * user acts: no retry loop behind their back.
   */
  resume(input: ResumeInput): Promise<void>;
  onEngineEvent(event: EngineEvent): Promise<void>;
  /** Something the user asked of a running feature besides on and off (Protect's "New path"). */
  act?(action: SwitchAction): Promise<void>;
  /**
   * The user changed the settings: a running feature puts them in place itself, no off and on needed. Called
   * whether or not the feature runs (a Volunteer paused at its monthly cap resumes when the cap is raised).
   */
  applySettings?(settings: Settings): Promise<void>;
}

/**
 * The part every switch keeps the same way: its state is shown at once, written to storage for the popup,
 * and announced (`change`) for the badge.
 */
export abstract class SwitchBase extends Emitter<{ change: [state: SwitchState] }> {
  abstract readonly name: SwitchName;
  private current: SwitchState = { status: 'off' };

  constructor(private readonly saveState: (name: SwitchName, state: SwitchState) => Promise<void>) {
    super();
  }

  get state(): SwitchState {
    return this.current;
  }

  protected async setState(state: SwitchState): Promise<void> {
    this.current = state;
    await this.saveState(this.name, state);
    this.emit('change', state);
  }

  /** Shows a state read back from storage (after a worker restart) without writing it again. */
  protected showStored(state: SwitchState): void {
    this.current = state;
    this.emit('change', state);
  }
}
