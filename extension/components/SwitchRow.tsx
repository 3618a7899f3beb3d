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
    case 'error':
      return `Error: ${state.reason}`;
  }
}

export function SwitchRow(props: {
  name: SwitchName;
  label: string;
  hint: string;
  state: SwitchState;
  busy: boolean;
  onToggle: (on: boolean) => void;
  children?: ComponentChildren;
}) {
  const { name, label, hint, state, busy, onToggle } = props;
  // An error keeps the switch "on": the user asked for it, and turning it off is how they clear it.
  const checked = state.status !== 'off';
  return (
    <section class={`switch-row status-${state.status}`} data-testid={`${name}-row`}>
      <div class="switch-head">
        <div>
          <div class="switch-label" id={`${name}-label`}>
            {label}
          </div>
          <div class="switch-hint">{hint}</div>
        </div>
        <button
          type="button"
          role="switch"
          class="switch"
          aria-checked={checked}
          aria-labelledby={`${name}-label`}
          aria-describedby={`${name}-state`}
          data-testid={`${name}-switch`}
          disabled={busy}
          onClick={() => onToggle(!checked)}
        >
          <span class="knob" />
        </button>
      </div>
      <p
        class="switch-state"
        id={`${name}-state`}
        data-testid={`${name}-state`}
        data-status={state.status}
        role="status"
      >
        {describeState(state)}
      </p>
      {props.children}
    </section>
  );
}
