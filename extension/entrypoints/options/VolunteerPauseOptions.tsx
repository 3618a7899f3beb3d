import { conditionSupport, type NavigatorLike } from '../../features/volunteer/browser-conditions';
import { t, type MessageKey } from '../../lib/i18n';
import type { Settings } from '../../lib/settings';

type PauseSettings = Pick<Settings, 'volunteerPauseOnBattery' | 'volunteerPauseOnMetered'>;

/**
 * "Pause volunteering on battery / on a metered connection". The engines' host is a document of this same
 * browser, so what this page's `navigator` tells is what the host will be told: an option the browser cannot
 * honour is shown disabled, with the reason, never as a checkbox that does nothing.
 */
export function VolunteerPauseOptions(props: {
  settings: PauseSettings;
  onChange: (change: Partial<PauseSettings>) => void;
}) {
  const support = conditionSupport(navigator as NavigatorLike);
  return (
    <div class="pause-options">
      <PauseOption
        id="volunteer-pause-battery"
        label="optionsPauseOnBattery"
        unknown="optionsPauseBatteryUnknown"
        supported={support.battery}
        checked={props.settings.volunteerPauseOnBattery}
        onChange={(on) => props.onChange({ volunteerPauseOnBattery: on })}
      />
      <PauseOption
        id="volunteer-pause-metered"
        label="optionsPauseOnMetered"
        unknown="optionsPauseMeteredUnknown"
        supported={support.metered}
        checked={props.settings.volunteerPauseOnMetered}
        onChange={(on) => props.onChange({ volunteerPauseOnMetered: on })}
      />
      <p class="help" id="volunteer-pause-help">
        {t('optionsPauseHelp')}
      </p>
    </div>
  );
}

function PauseOption(props: {
  id: string;
  label: MessageKey;
  unknown: MessageKey;
  supported: boolean;
  checked: boolean;
  onChange: (on: boolean) => void;
}) {
  const why = `${props.id}-why`;
  return (
    <div class="choice">
      <label>
        <input
          type="checkbox"
          id={props.id}
          data-testid={props.id}
          // Stored on by an older build or by hand, it still shows unchecked here: it cannot act.
          checked={props.supported && props.checked}
          disabled={!props.supported}
          aria-describedby={props.supported ? 'volunteer-pause-help' : why}
          onChange={(event) => props.onChange(event.currentTarget.checked)}
        />{' '}
        {t(props.label)}
      </label>
      {!props.supported && (
        <p class="help" id={why} data-testid={why}>
          {t(props.unknown)}
        </p>
      )}
    </div>
  );
}
