// Real @lockstep/client replicas in this process, given every node's URL: a model that records
// every item published into it, sockets tapped so their streams are recorded like a raw client's
// (tap.mjs), and the state comparison at one entry that every replica processes.
import { createHash } from "node:crypto";
import { WebSocket } from "ws";
import { MessageType, decodeClientMessage } from "@lockstep/protocol";
import { Model, Session, View } from "@lockstep/client";
import { StreamRecord } from "./tap.mjs";
import { withTimeout } from "./time.mjs";

class Tally extends Model {
  init() {
    this.items = [];
    this.lastCheck = "";
    this.subscribe("tally", "add", this.add);
    this.subscribe("tally", "check", this.check);
  }
  add(item) {
    this.items.push(item);
  }
  check(id) {
    this.lastCheck = id;
  }
}
Tally.register("ClusterFaults.Tally");

/** One real client: joins `name` with the URL list rotated to start at `startIndex`, publishes "label:n" items. */
export class RealClient {
  constructor({ urls, name, label, nodeName, startIndex = 0, rate = 5 }) {
    Object.assign(this, { name, label, nodeName, rate });
    this.urls = urls.map((_, i) => urls[(i + startIndex) % urls.length]);
    this.record = new StreamRecord(label, undefined);
    this.session = undefined;
    this.stopped = false;
    this.sent = 0;
    this.#timer = undefined;
  }

  #timer;

  /** The tapped socket factory the session opens its connections with. */
  #socket = (url) => {
    const ws = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
    ws.binaryType = "nodebuffer";
    const conn = this.record.open(url, this.nodeName(url));
    const send = ws.send.bind(ws);
    ws.send = (data, ...rest) => {
      if (data?.[1] === MessageType.Join) {
        try {
          const join = decodeClientMessage(data);
          conn.resumeSeq = join.resumeSeq ?? 0;
          // The wire's session id (the session object's own id is another one).
          this.record.sessionId = join.sessionId;
        } catch {
          // not ours to judge
        }
      }
      return send(data, ...rest);
    };
    ws.on("error", () => undefined);
    ws.on("message", (data) => void this.record.frame(conn, data));
    ws.once("close", (code, reason) => this.record.closed(conn, code, String(reason)));
    return ws;
  };

  /** Joins; resolves once joined (the first Session.join may be redirected). */
  async start(timeoutMs = 30_000) {
    this.session = await withTimeout(
      Session.join({ appId: "cluster.faults", name: this.name, password: "faults", model: Tally, view: View, reflector: this.urls, socket: this.#socket, autoSleep: false }),
      timeoutMs,
      `${this.label} Session.join`,
    );
    return this;
  }

  /** Publishes one item every 1/rate s (queued by the library while offline). */
  publish() {
    this.#timer ??= setInterval(() => this.session.view.publish("tally", "add", `${this.label}:${++this.sent}`), 1000 / this.rate);
  }

  quiet() {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  get connected() {
    return this.session?.status === "connected";
  }

  /** Its own items the model holds (published and ordered). */
  ownItems() {
    return this.session.model.items.filter((item) => item.startsWith(`${this.label}:`));
  }

  async stop() {
    this.stopped = true;
    this.quiet();
    await withTimeout(this.session?.leave() ?? Promise.resolve(), 8000, `${this.label} leave`).catch(() => undefined);
  }
}

/**
 * Publishes a check event from `clients[0]` and resolves with every replica's { seq, hash } right
 * after processing it (state bytes hashed synchronously in afterEntry).
 */
export function checkReplicas(clients, id, timeoutMs = 20_000) {
  const points = clients.map(
    (c) =>
      new Promise((resolve) => {
        const stop = c.session.afterEntry((seq) => {
          if (c.session.model.lastCheck !== id) return;
          stop();
          resolve({ label: c.label, seq, hash: createHash("sha256").update(c.session.stateBytes()).digest("hex"), items: [...c.session.model.items] });
        });
      }),
  );
  clients[0].session.view.publish("tally", "check", id);
  return withTimeout(Promise.all(points), timeoutMs, `replica check ${id}`);
}
