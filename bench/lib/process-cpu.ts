/** CPU seconds this process has used so far, all its threads (user + system). */
export function processCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}
