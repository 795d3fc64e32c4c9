/** The emulator's clock: the local clock plus an adjustable offset (for clock-skew tests). */
export class Clock {
  #offsetSeconds: number;

  constructor(offsetSeconds = 0) {
    this.#offsetSeconds = checkOffset(offsetSeconds);
  }

  /** Offset from the local clock, in seconds. */
  get offsetSeconds(): number {
    return this.#offsetSeconds;
  }

  set offsetSeconds(seconds: number) {
    this.#offsetSeconds = checkOffset(seconds);
  }

  /** UNIX seconds, fractional. */
  now(): number {
    return Date.now() / 1000 + this.#offsetSeconds;
  }

  /** The emulator's time as an HTTP `Date` header value. */
  httpDate(): string {
    return new Date(this.now() * 1000).toUTCString();
  }
}

function checkOffset(seconds: number): number {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    throw new RangeError('clock offset must be a finite number of seconds');
  }
  return seconds;
}
