// Long-running commands (servers): serve until SIGINT or SIGTERM, then close once.

/** Resolves when `close()` has finished after the first SIGINT or SIGTERM; rejects if it fails. */
export function closeOnStopSignal(close: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onSignal = (): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      close().then(resolve, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
