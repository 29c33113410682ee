/** `qmpctl ga CMD | exec | cp | wait`: the guest agent (qemu-ga). @module */
import { typeAgentArguments } from "../lib/agent_schema.ts";
import { exitStatusHelp } from "./exit_status.ts";
import { AGENT_COMMANDS_WITHOUT_REPLY, type GuestAgent } from "../lib/agent_client.ts";
import { didYouMean } from "../lib/closest.ts";
import { CommandError } from "../lib/errors.ts";
import { agentAddress, connectAgent } from "./ga_connect.ts";
import { argsObject, withArgsHint } from "./args_stdin.ts";
import { AGENT_COMMAND, agentForm, formRefuses } from "./ga_forms.ts";
import { findOption, UsageError } from "./options.ts";
import { cleaningUpOnFatalSignal } from "./io/signals.ts";
import { type CommandContext, executeAndPrint, formatJson, printRawError } from "./session.ts";

export const help = (): string =>
  `Usage: qmpctl ga AGENT-COMMAND [KEY=VALUE ...] [options]
       qmpctl ga exec [options] [--] PROG [ARGS...]
       qmpctl ga cp SRC DST
       qmpctl ga wait [--timeout D]

Talk to the QEMU guest agent (qemu-ga) inside a guest, through the host end
of its virtio-serial channel (-chardev socket,path=/run/vm1.ga,... in QEMU's
command line). The address is -s ADDR or $QMPCTL_GA_SOCKET. Before the first
command qmpctl resynchronises the channel (guest-sync-delimited with a random
id), so replies left by an earlier client that died are never taken for its
own; an agent that does not answer within --connect-timeout (default 10s;
the guest may be booting, or run no agent) exits 3. A run that gives up on
a reply (a bound ran out, Ctrl-C) ends up to 0.3s later (1s while a large
reply is coming): it reads what the agent still owes first, since qemu-ga
serving its own socket quits when a client leaves a reply unread.

ga AGENT-COMMAND: run one agent command and print its return value as one
JSON line, as 'exec' does for QMP (--raw, --pretty, -v and --args too).
KEY=VALUE words are typed by the agent's documented schema (built in), so
path=/bin/ls stays text and arg.0=-l builds a list; commands it does not
know get JSON where a value parses, else text. guest-shutdown and
guest-suspend-* are not answered when they work: qmpctl prints nothing then,
and exits 0 once a guest-ping after them is answered, the connection ends,
or --connect-timeout passes without either (a suspending guest freezes its
agent); an error answer exits 1 (--raw prints it, {"error": ...}).
  qmpctl ga guest-ping                              # {}
  qmpctl ga guest-get-osinfo --pretty
  qmpctl ga guest-exec path=/bin/ls arg.0=-l capture-output=true
  qmpctl ga guest-file-open path=/etc/hostname mode=r

ga exec: run PROG in the guest (guest-exec, polling guest-exec-status),
write its output to stdout and its error output to stderr byte for byte,
and exit with its exit status (128+N when signal N ended it; 127 when it
is not found, 126 when it cannot be run), as 'ssh host cmd' does. Every
word after PROG is its own (ga exec df -h runs df -h); qmpctl's options go
before PROG, and -- before PROG is optional. --stdin
FILE (- for qmpctl's stdin) becomes its input (without it, an empty one:
qmpctl's own stdin is not passed, unlike ssh's), up to 48 MiB less 1 KiB
(50330624 bytes), which guest-exec takes in one message, in base64, beside
the command line (one longer than about 1 KiB lowers it; more exits 2: ga
cp the file in, and let PROG read it there). --env K=V (repeatable) gives
it an environment (qemu-ga passes only these variables).
qemu-ga keeps at most 16 MB of each output: more is cut, with a warning.
--json prints the final guest-exec-status object instead (--pretty indents
it) and exits 0 (1, with the agent's error, when PROG could not be started:
there is none).
--timeout D exits 124, Ctrl-C 130; the program may then still run in the guest.
  qmpctl ga exec -- uname -a
  qmpctl ga exec --stdin backup.sql -- psql -q app
  qmpctl ga exec --timeout 30s -- systemctl is-system-running --wait

ga cp SRC DST: copy a file into or out of the guest; the guest side is
written :/path, and - is stdin or stdout on the local side. Streamed in
chunks (guest-file-open/read/write/close), byte-exact, in bounded memory;
the guest's file handle is closed on every path (errors, SIGINT, timeout).
A local directory as DST receives the file under the guest file's name; a
guest DST ending in / receives it under the local file's name (a local path
ending in / that is a file exits 2, as cp(1) refuses it).
A local file is written beside DST and renamed over it once complete, so a
copy that fails, times out or is interrupted leaves DST as it was (a guest
DST is written in place, qemu-ga has no rename: it is left cut short). A new
file is created 0600 (qemu-ga does not tell the guest file's mode: chmod it
after); a file that replaces one of your own keeps that one's mode. DST may
not be a symbolic link to a file, nor a dangling one (exit 2: name the file
the link leads to, or - for stdout); one to a directory or a device
(/dev/null) is used as cp(1) uses it. A local DST this user may not write
exits 2 (its directory not writable; another user's file in a directory
with the sticky bit, as /tmp, which it may not replace); a write that
fails under way (a full disk) exits 74.
  qmpctl ga cp :/var/log/syslog ./vm1-syslog
  qmpctl ga cp ./authorized_keys :/root/.ssh/authorized_keys
  qmpctl ga cp :/etc/os-release - | grep VERSION

ga wait: wait until the agent answers, retrying the socket and the sync, as
long as it takes unless --timeout bounds it (0 when it answered; 124 when
--timeout ran out, saying why the last try failed; 3 at once for a path
that is not a socket, one this user may not open, or an ssh login refused;
3 when --wait-socket D passed with no socket there).
  qemu-system-x86_64 ... \\
    -chardev socket,path=/run/vm1.ga,server=on,wait=off,id=ga0 \\
    -device virtio-serial \\
    -device virtserialport,chardev=ga0,name=org.qemu.guest_agent.0 &
  export QMPCTL_GA_SOCKET=/run/vm1.ga
  qmpctl ga wait --timeout 2m && qmpctl ga exec -- uptime

${
    exitStatusHelp(["OK", "QEMU_ERROR", "USAGE", "CONNECTION", "OUTPUT", "TIMEOUT", "INTERRUPTED"], {
      OK: "done (ga exec: the program's own status)",
      QEMU_ERROR: "the agent answered with an error",
      USAGE: "usage (unknown agent command, bad KEY=VALUE; a local file that cp or --stdin cannot open, " +
        "or that cp may not write)",
      OUTPUT: "could not write the output (a full disk)",
      CONNECTION: "connection (no agent answered)",
    })
  }`;

const SUBCOMMANDS: Record<string, () => Promise<{ run(context: CommandContext): Promise<number> }>> = {
  exec: () => import("./ga_exec.ts"),
  cp: () => import("./ga_cp.ts"),
  wait: () => import("./ga_wait.ts"),
};

export async function run(context: CommandContext): Promise<number> {
  const [name, ...words] = context.words;
  if (!name) throw new UsageError("ga needs an agent command, or exec, cp or wait (e.g. qmpctl ga guest-ping)");
  if (name === "help") {
    throw new UsageError(
      "'help' is no guest agent command: see qmpctl ga --help (the agent's commands: ga guest-info)",
    );
  }
  const form = agentForm(name);
  for (const option of context.options.keys()) {
    const only = findOption(context.optionTable.commands.ga.options, "name", option)?.form;
    if (only !== undefined && only !== form) throw new UsageError(`ga ${form} does not take --${option}`);
  }
  for (const option of ["raw", "pretty"]) {
    const refused = context.options.has(option) && formRefuses(form, option, context.options.has("json"));
    if (refused) throw new UsageError(refused);
  }
  if (form === "cp") return (await SUBCOMMANDS.cp()).run({ ...context, words }).catch(withDisabledHint); // cleans up on its own
  // SIGTERM and SIGHUP end a command as Ctrl-C does, so that the agent's owed reply is read before qmpctl
  // dies of the signal: qemu-ga serving its own socket quits when a client leaves one unread.
  return await cleaningUpOnFatalSignal(
    context,
    async (context) =>
      form === AGENT_COMMAND
        ? runAgentCommand(context, name, words)
        : (await SUBCOMMANDS[name]()).run({ ...context, words }).catch(withDisabledHint),
  );
}

/** Why an agent may not find a command it is documented to have: said with its CommandNotFound. */
const DISABLED_HINT = " (unsupported on this guest, or blocked by qemu-ga --block-rpcs)";

/** exec, cp and wait send the agent's own commands (guest-exec, guest-file-open): one not found is disabled. */
function withDisabledHint(error: unknown): never {
  if (error instanceof CommandError && error.errorClass === "CommandNotFound") error.message += DISABLED_HINT;
  throw error;
}

async function runAgentCommand(context: CommandContext, command: string, words: string[]): Promise<number> {
  agentAddress(context); // no address: a usage error before anything is read
  const argsText = context.options.text("args");
  const base = argsText === undefined ? undefined : await argsObject(argsText, context.signal);
  const args = words.length > 0
    ? await typeAgentArguments(command, words, base).catch((error) => {
      throw withArgsHint(error);
    })
    : base;
  const agent = await connectAgent(context);
  try {
    const render = (value: unknown) => formatJson(value, context.global.pretty);
    // One the agent answers only when it fails has nothing to print when it succeeded; its error is printed
    // under --raw as any other command's.
    const run = AGENT_COMMANDS_WITHOUT_REPLY.has(command)
      ? agent.execute(command, args, { signal: context.signal, settleMs: context.global.connectTimeoutMs })
        .catch((error) => printRawError(context, command, error, "the guest agent"))
      : executeAndPrint(context, agent, command, args, render, "return", "the guest agent");
    await run.catch(async (error) => {
      if (error instanceof CommandError && error.errorClass === "CommandNotFound") {
        throw await unknownCommand(context, agent, command, error);
      }
      throw error;
    });
    return 0;
  } finally {
    await agent.close();
  }
}

/**
 * The usage error for a command the agent does not have, with the closest
 * names; for one it has disabled, its own error with why it may be so.
 */
async function unknownCommand(
  context: CommandContext,
  agent: GuestAgent,
  command: string,
  error: CommandError,
): Promise<Error> {
  let supported: { name: string; enabled: boolean }[];
  try {
    const info = await agent.execute("guest-info", undefined, { signal: context.signal }) as Record<string, unknown>;
    supported = (info.supported_commands ?? []) as typeof supported;
  } catch {
    return error; // the agent's own answer is all there is to say
  }
  const entry = supported.find((c) => c.name === command);
  if (entry && !entry.enabled) { // a command it has: its answer stands (exit 1), with why it may be so
    error.message += DISABLED_HINT;
    return error;
  }
  const enabled = supported.filter((c) => c.enabled).map((c) => c.name);
  return new UsageError(`unknown guest agent command '${command}'${didYouMean(command, enabled)}`);
}
