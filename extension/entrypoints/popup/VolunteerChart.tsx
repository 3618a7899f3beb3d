import browser from 'webextension-polyfill';
import { formatBytes } from '../../components/format';
import { weekOf, type VolunteerHistory } from '../../features/volunteer/volunteer-history';
import { t } from '../../lib/i18n';
import './volunteer-chart.css';

/**
 * The volunteer's last seven days as two small bar charts (people helped, data relayed). The bars are drawn
 * for the eye only; screen readers get the same figures as a table, and each bar's title says them on hover.
 * Colours come from CSS custom properties and `currentColor`, so the chart follows the light or dark theme.
 */

const SLOT = 40;
const BAR = 24;
const BARS_HEIGHT = 40;
const LABEL_HEIGHT = 14;
const WIDTH = SLOT * 7;

export function VolunteerChart(props: { history: VolunteerHistory; now: number }) {
  const week = weekOf(props.history, props.now);
  if (week.every((day) => day.helped === 0 && day.bytes === 0)) return null;
  const locale = uiLocale();
  const short = dateFormat(locale, { weekday: 'short' });
  const long = dateFormat(locale, { weekday: 'long', month: 'long', day: 'numeric' });
  const days = week.map((entry) => {
    const date = calendarDate(entry.day);
    return { ...entry, short: short.format(date), long: long.format(date) };
  });
  return (
    <figure class="volunteer-chart" data-testid="volunteer-chart" aria-labelledby="volunteer-chart-title">
      <figcaption id="volunteer-chart-title">{t('volunteerChartTitle')}</figcaption>
      <Bars
        kind="helped"
        title={t('volunteerChartHelped')}
        days={days.map((day) => ({
          short: day.short,
          long: day.long,
          value: day.helped,
          text: String(day.helped),
        }))}
      />
      <Bars
        kind="bytes"
        title={t('volunteerChartRelayed')}
        days={days.map((day) => ({
          short: day.short,
          long: day.long,
          value: day.bytes,
          text: formatBytes(day.bytes),
        }))}
      />
      <table class="chart-figures">
        <caption>{t('volunteerChartTitle')}</caption>
        <thead>
          <tr>
            <th scope="col">{t('volunteerChartDay')}</th>
            <th scope="col">{t('volunteerChartHelped')}</th>
            <th scope="col">{t('volunteerChartRelayed')}</th>
          </tr>
        </thead>
        <tbody>
          {days.map((day) => (
            <tr
              key={day.day}
              data-testid="volunteer-chart-day"
              data-day={day.day}
              data-helped={day.helped}
              data-bytes={day.bytes}
            >
              <th scope="row">{day.long}</th>
              <td>{day.helped}</td>
              <td>{formatBytes(day.bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

type Bar = { short: string; long: string; value: number; text: string };

function Bars(props: { kind: 'helped' | 'bytes'; title: string; days: Bar[] }) {
  const peak = Math.max(0, ...props.days.map((day) => day.value));
  const peakText = props.days.find((day) => day.value === peak)?.text ?? '0';
  return (
    <div class={`chart-row chart-${props.kind}`} aria-hidden="true">
      <div class="chart-head">
        <span>{props.title}</span>
        <span class="chart-peak">{peakText}</span>
      </div>
      <svg
        class="chart-bars"
        viewBox={`0 0 ${WIDTH} ${BARS_HEIGHT + LABEL_HEIGHT}`}
        role="presentation"
        focusable="false"
      >
        <line class="chart-base" x1={0} x2={WIDTH} y1={BARS_HEIGHT + 0.5} y2={BARS_HEIGHT + 0.5} />
        {props.days.map((day, index) => {
          // A day with anything at all gets a bar one unit tall at least, so it never looks like none.
          const height = peak > 0 && day.value > 0 ? Math.max(1, (day.value / peak) * BARS_HEIGHT) : 0;
          const x = index * SLOT + (SLOT - BAR) / 2;
          return (
            <g key={index}>
              <rect class="chart-bar" x={x} y={BARS_HEIGHT - height} width={BAR} height={height}>
                <title>{`${day.long}: ${day.text}`}</title>
              </rect>
              <text class="chart-label" x={index * SLOT + SLOT / 2} y={BARS_HEIGHT + LABEL_HEIGHT - 2}>
                {day.short}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

/** The browser's UI language, for day names; the runtime's default where it has none or names a bad one. */
function uiLocale(): string | undefined {
  try {
    return browser.i18n.getUILanguage();
  } catch {
    return undefined;
  }
}

function dateFormat(locale: string | undefined, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat(locale, options);
  } catch {
    return new Intl.DateTimeFormat(undefined, options);
  }
}

/** YYYY-MM-DD as a local date (noon, so no time zone shift moves it to another day). */
function calendarDate(day: string): Date {
  const [year, month, date] = day.split('-').map(Number);
  return new Date(year ?? 1970, (month ?? 1) - 1, date ?? 1, 12);
}
