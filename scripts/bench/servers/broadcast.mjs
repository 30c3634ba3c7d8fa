// The benches' baseline server: a raw `ws` broadcast server. A room per URL path (one per
// session), and each binary message a member sends is written to every member of its room, the
// sender included (as a reflector relays a Send back to its sender). No ordering, time stamps,
// limits or storage. By default no corking either: one `ws.send`, so one socket write, per member
// per message (issue 15's baseline). `cork: true` (a diagnostic, not the baseline) holds each
// member's writes of one turn of the event loop back into one, as the reflector does.
import { WebSocketServer } from "ws";

/**
 * Starts the broadcast server on `host:port` (port 0: a free one).
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startBroadcastServer({ host = "127.0.0.1", port = 0, cork = false } = {}) {
  const wss = new WebSocketServer({ host, port, perMessageDeflate: false, clientTracking: false, maxPayload: 1 << 20 });
  await new Promise((resolve, reject) => {
    wss.once("listening", resolve);
    wss.once("error", reject);
  });
  const rooms = new Map();
  const sockets = new Set();
  wss.on("connection", (ws, req) => {
    const room = req.url ?? "/";
    let members = rooms.get(room);
    if (!members) rooms.set(room, (members = new Set()));
    members.add(ws);
    sockets.add(ws);
    let corked = false;
    const uncork = () => {
      corked = false;
      ws._socket.uncork();
    };
    ws.corkTurn = () => {
      if (corked) return;
      corked = true;
      ws._socket.cork();
      process.nextTick(uncork);
    };
    ws.on("message", (data) => {
      for (const m of members) {
        if (cork) m.corkTurn();
        m.send(data);
      }
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      sockets.delete(ws);
      members.delete(ws);
      if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
    });
  });
  return {
    url: `ws://${host}:${wss.address().port}/`,
    close() {
      for (const ws of sockets) ws.terminate();
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}
