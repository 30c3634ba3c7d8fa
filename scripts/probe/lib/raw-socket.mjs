// A hand-rolled WebSocket client over a TCP socket, for what `ws` will not send: one message that
// never finishes (attack 1).
import { randomBytes } from "node:crypto";
import net from "node:net";
import { MiB } from "./format.mjs";
import { now } from "./time.mjs";

const ZERO_MIB = Buffer.alloc(MiB);

/** A masked client frame header with a 64-bit length and an all-zero mask key (so zero bytes stay zero). */
function wsHeader(fin, opcode, length) {
  const h = Buffer.alloc(14);
  h[0] = (fin ? 0x80 : 0) | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

/** Splits unmasked server frames off `buf`, calling `onFrame(opcode, payload)`; returns the rest. */
function parseServerFrames(buf, onFrame) {
  while (buf.length >= 2) {
    let length = buf[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (buf.length < 4) break;
      length = buf.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (buf.length < 10) break;
      length = Number(buf.readBigUInt64BE(2));
      offset = 10;
    }
    if (buf.length < offset + length) break;
    onFrame(buf[0] & 0x0f, buf.subarray(offset, offset + length));
    buf = buf.subarray(offset + length);
  }
  return buf;
}

/**
 * A hand-rolled WebSocket client that, before any Join, streams `bytes` of one message that never
 * finishes: one frame declaring `declared` bytes, or (fragmented) 1 MiB non-final fragments.
 * Resolves once the reflector closed it (close frame or TCP close) or at `giveUpAt`.
 */
export function unfinishedMessage(port, { fragmented, bytes, declared, giveUpAt }) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const result = { sent: 0, closedAt: undefined, how: undefined };
    let finished = false;
    let upgraded = false;
    let inbox = Buffer.alloc(0);
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const closed = (how) => {
      if (finished) return; // our own destroy at giveUpAt
      if (result.closedAt === undefined) {
        result.closedAt = now();
        result.how = how;
      }
      finish();
    };
    const timer = setTimeout(finish, giveUpAt - now());
    socket.on("error", () => closed("reset"));
    socket.on("close", () => closed("tcp close"));
    socket.on("end", () => closed("tcp close"));
    socket.on("data", (chunk) => {
      inbox = Buffer.concat([inbox, chunk]);
      if (!upgraded) {
        const end = inbox.indexOf("\r\n\r\n");
        if (end < 0) return;
        const status = /^HTTP\/1\.1 (\d+)/.exec(inbox.subarray(0, end).toString("latin1"))?.[1];
        inbox = inbox.subarray(end + 4);
        if (status !== "101") return closed(`HTTP ${status}`);
        upgraded = true;
        pump();
      }
      inbox = parseServerFrames(inbox, (opcode, payload) => {
        if (opcode === 8) closed(`close ${payload.length >= 2 ? payload.readUInt16BE(0) : 1005}`);
      });
    });
    socket.once("connect", () => {
      socket.write(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const drained = () =>
      new Promise((r) => {
        const t = setTimeout(r, Math.max(0, giveUpAt - now()));
        const done = () => {
          clearTimeout(t);
          socket.off("drain", done);
          socket.off("close", done);
          r();
        };
        socket.once("drain", done);
        socket.once("close", done);
      });
    async function pump() {
      if (!fragmented) socket.write(wsHeader(true, 0x2, declared));
      while (result.sent < bytes && !finished && now() < giveUpAt) {
        if (fragmented) socket.write(wsHeader(false, result.sent === 0 ? 0x2 : 0x0, ZERO_MIB.length));
        const more = socket.write(ZERO_MIB);
        result.sent += ZERO_MIB.length;
        if (!more) await drained();
      }
    }
  });
}
