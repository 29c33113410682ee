/**
 * The library's messages for a socket of the other kind (a guest agent's
 * given to QmpClient, a monitor's to GuestAgent) say what is true without
 * naming qmpctl's commands: the CLI adds its advice (ga_agent_test.ts).
 */
import { expect, test } from "bun:test";
import { ConnectTimeoutError, GuestAgent, MonitorNotAgentError, ProtocolError, QmpClient } from "../lib/mod.ts";
import { startQemu } from "./helpers/qemu.ts";
import { startAgent } from "./helpers/qemu_ga.ts";

test("QmpClient at a guest agent's socket: no greeting, noGreeting set, no qmpctl command named", async () => {
  const agent = await startAgent();
  try {
    const error = await QmpClient.connect(agent.socket, { connectTimeout: 300 }).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect(error.noGreeting).toBe(true);
    expect(error.message).toBe(
      `no QMP greeting from ${agent.socket} within 300ms: another client may hold the monitor ` +
        "(QEMU serves one client at a time), QEMU may be stopped or hung, or it is no QMP monitor",
    );
  } finally {
    await agent.stop();
  }
});

test("GuestAgent at a QMP monitor: a MonitorNotAgentError saying so, no qmpctl command named", async () => {
  const qemu = await startQemu();
  try {
    const error = await GuestAgent.connect(qemu.socket, { connectTimeout: 5000 }).catch((e) => e);
    expect(error).toBeInstanceOf(MonitorNotAgentError);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error.code).toBe("PROTOCOL");
    expect(error.message).toBe(`${qemu.socket} is a QMP monitor, not a guest agent`);
  } finally {
    await qemu.stop();
  }
}, 15_000);
