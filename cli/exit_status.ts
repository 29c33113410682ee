/**
 * The exit statuses of qmpctl, by name: the one place they are defined.
 * Help texts and the README describe them from here.
 *
 * @module
 */

/** Every exit status qmpctl uses. */
export const EXIT = {
  /** Done: the command returned, the awaited events arrived. */
  OK: 0,
  /** QEMU (or the guest agent, or the guest program) answered with an error. */
  QEMU_ERROR: 1,
  /** Usage: unknown command or option, no address, bad KEY=VALUE or JSON. */
  USAGE: 2,
  /** Connection: cannot connect, no greeting, connection lost, protocol broken. */
  CONNECTION: 3,
  /** The output could not be written (a full disk, a closed stdout), as sysexits' EX_IOERR. */
  OUTPUT: 74,
  /** The --timeout the user set ran out (as timeout(1) does). */
  TIMEOUT: 124,
  /** Interrupted by SIGINT. */
  INTERRUPTED: 130,
} as const;
