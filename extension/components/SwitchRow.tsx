import type { ComponentChildren } from 'preact';
import type { SwitchName, SwitchState } from '../lib/messages';

/** The words under a switch: what it is doing now, and why when it failed. */
export function describeState(state: SwitchState): string {
  switch (state.status) {
    case 'off':
      return 'Off';
    case 'connecting':
      return state.detail ? `Connecting: ${state.detail}…` : 'Connecting…';
    case 'on':
      return state.detail ? `On: ${state.detail}` : 'On';
    case 'reconnecting':
      return state.detail ? `Reconnecting: ${state.detail}` : 'Reconnecting…';
    case 'paused':
      return state.reason;
    case 'error':
      return `Error: ${state.reason}`;
  }
}

export function SwitchRow(props: {
  name: SwitchName;
  label: string;
  hint: string;
  /** A short word for the state, shown bold before the details (e.g. "Protected"). */
  headline: string;
  /** Hide the state's own details (when the caller shows them better itself). */
  hideDetails?: boolean;
  state: SwitchState;
  busy: boolean;
  onToggle: (on: boolean) => void;
  children?: ComponentChildren;
}) {
  const { name, label, hint, headline, state, busy, onToggle } = props;
  // An error or a pause keeps the switch "on": the user asked for it, and turning it off is how they clear it.
  const checked = state.status !== 'off';
  const details = state.status === 'off' || props.hideDetails ? '' : describeState(state);
  return (
    <section
      class={`switch-row status-${state.status}`}
      data-testid={`${name}-row`}
      aria-labelledby={`${name}-label`}
    >
      <div class="switch-head">
        <div>
          <h2 class="switch-label" id={`${name}-label`}>
            {label}
          </h2>
          <div class="switch-hint" id={`${name}-hint`}>
            {hint}
          </div>
        </div>
        <button
          type="button"
          role="switch"
          class="switch"
          aria-checked={checked}
          aria-labelledby={`${name}-label`}
          aria-describedby={`${name}-hint ${name}-state`}
          data-testid={`${name}-switch`}
          disabled={busy}
          onClick={() => onToggle(!checked)}
        >
          <span class="knob" aria-hidden="true" />
        </button>
      </div>
      <p
        class="switch-state"
        id={`${name}-state`}
        data-testid={`${name}-state`}
        data-status={state.status}
        role="status"
        aria-live="polite"
      >
        <strong class="headline">{headline}</strong>
        {details && details !== headline ? <span class="details"> {details}</span> : null}
      </p>
      {props.children}
    </section>
  );
}
