/**
 * The Redirect frame and the two close codes of a cluster (PROTOCOL.md §17): round trips, a golden
 * frame worked out by hand from the layout, and the malformed frames a receiver must refuse.
 */
import { CloseCode, MessageType, closeCodeName, decodeClientMessage, decodeServerMessage, encodeServerMessage, type RedirectMessage } from "../src/index";
import { hex, normHex, toHex } from "@lockstep/test-support";
import { expectProtocolError } from "./helpers";

const redirect = (url: string): RedirectMessage => ({ type: MessageType.Redirect, url });

test.each([
  ["a ws:// node", "ws://10.0.0.2:8787/"],
  ["a wss:// node", "wss://node-3.lockstep.example/"],
  ["an IPv6 node with a path and query", "wss://[2001:db8::7]:8443/cluster/node-7?region=eu"],
  ["non-ASCII text", "ws://nœud-é.example/€/😀"],
  ["an empty URL (the codec carries it; a client does not follow it)", ""],
  ["a 5 KB URL", `wss://x.example/${"a".repeat(5000)}`],
])("Redirect to %s round-trips and re-encodes to the same bytes", (_what, url) => {
  const frame = encodeServerMessage(redirect(url));
  const decoded = decodeServerMessage(frame);
  expect(decoded).toEqual(redirect(url));
  expect(toHex(encodeServerMessage(decoded))).toBe(toHex(frame));
});

// ver type | url length 19 | "ws://10.0.0.2:8787/"
const GOLDEN = "02 4e  13  77 73 3a 2f 2f 31 30 2e 30 2e 30 2e 32 3a 38 37 38 37 2f";

test("the Redirect frame is exactly version, 0x4e, then the URL as a string", () => {
  expect(MessageType.Redirect).toBe(0x4e);
  expect(toHex(encodeServerMessage(redirect("ws://10.0.0.2:8787/")))).toBe(normHex(GOLDEN));
  expect(decodeServerMessage(hex(GOLDEN))).toEqual(redirect("ws://10.0.0.2:8787/"));
});

test("a truncated Redirect, one with bytes left over, or one with invalid UTF-8 is a protocol error", () => {
  const frame = hex(GOLDEN);
  for (let end = 2; end < frame.length; end++) expectProtocolError(() => decodeServerMessage(frame.subarray(0, end)));
  expectProtocolError(() => decodeServerMessage(Uint8Array.from([...frame, 0])));
  expectProtocolError(() => decodeServerMessage(hex("02 4e  02  c3 28")));
  // Another version byte is refused as such.
  expectProtocolError(() => decodeServerMessage(Uint8Array.from([1, ...frame.subarray(1)])), CloseCode.VersionMismatch);
});

test("Redirect travels only from the reflector: a client frame of type 0x4e is unknown", () => {
  const error = expectProtocolError(() => decodeClientMessage(hex(GOLDEN)));
  expect(error.message).toMatch(/unknown/);
});

test("the cluster's close codes keep their numbers and names", () => {
  expect(CloseCode.Redirect).toBe(4017);
  expect(CloseCode.SessionMoved).toBe(4018);
  expect(closeCodeName(4017)).toBe("Redirect");
  expect(closeCodeName(4018)).toBe("SessionMoved");
});
