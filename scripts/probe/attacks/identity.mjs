// Attacks on who a session belongs to: squatting its persistence slots (5) or its public sessionId
// (6), and an insider replaying a captured ciphertext (9). Honest parties are the real library.
import { randomBytes } from "node:crypto";
import { WebSocket } from "ws";
import { MessageType, PersistOutcome, encodeClientMessage, encodeSend } from "@lockstep/protocol";
import { counterModel, hashesWhen, honestJoin, learnPublicIds, loadClient } from "../lib/clients.mjs";
import { MiB, fmtTally, tally } from "../lib/format.mjs";
import { b64sha, randomId } from "../lib/ids.mjs";
import { newIdentity, rawJoin } from "../lib/raw.mjs";
import { sleep, until, withTimeout } from "../lib/time.mjs";

// ============================================================================ attack 5: slot squatting

/** The same document app in two code versions (different class source), saving with persistSession. */
function squatDoc(client, version) {
  let cls;
  if (version === 1) {
    cls = class SquatDoc extends client.Model {
      static persistDelay = 0;
      init(_options, persisted) {
        this.text = persisted?.text ?? "";
        this.subscribe("doc", "set", this.set);
      }
      set(text) {
        this.text = text;
        this.persistSession(() => ({ text: this.text }));
      }
    };
  } else {
    cls = class SquatDoc extends client.Model {
      static persistDelay = 0;
      init(_options, persisted) {
        this.restored = persisted ?? null;
        this.text = persisted?.text ?? "(nothing restored)";
        this.generation = 2;
      }
    };
  }
  cls.register("Probe.SquatDoc");
  return cls;
}

/** Joins a session of its own and uploads junk to every slot in `slots` (PersistChunk, else PersistUpload). */
async function squatSlots(url, slots, persistentId) {
  const id = newIdentity({ persistentId });
  const slotToken = new Uint8Array(randomBytes(32));
  const outcomes = {};
  let chunks = true;
  let c;
  for (const slot of slots) {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!c?.open) c = await rawJoin(url, id);
      const data = new Uint8Array(randomBytes(64));
      const common = { slot, token: slotToken, seq: c.sync.seq + 1, hash: new Uint8Array(randomBytes(32)), size: 20 };
      c.send(
        chunks
          ? encodeClientMessage({ type: MessageType.PersistChunk, ...common, total: data.length, offset: 0, data })
          : encodeClientMessage({ type: MessageType.PersistUpload, ...common, blob: data }),
      );
      try {
        const ack = await c.next(MessageType.PersistAck, 2000);
        tally(outcomes, Object.keys(PersistOutcome).find((k) => PersistOutcome[k] === ack.outcome) ?? ack.outcome);
        break;
      } catch (error) {
        if (!chunks) {
          tally(outcomes, `error ${error.code ?? error.message}`);
          break;
        }
        chunks = false; // an older reflector: no PersistChunk yet
      }
    }
  }
  c?.leave();
  return { outcomes, method: chunks ? "PersistChunk" : "PersistUpload" };
}

/**
 * Attack 5: before any honest client, raw uploads to every persistence slot computable from public
 * data; then a v1 client saves and a v2 client must get that data in init.
 * @param {import("../lib/scope.mjs").Scope} scope
 */
export async function attack5(scope) {
  const r = await scope.reflector("a5");
  const appId = "probe.squat";
  const name = `notes-${randomId(6)}`;
  const password = "correct horse battery staple";
  const v1 = await loadClient("a5v1");
  const v2 = await loadClient("a5v2");
  const V1 = squatDoc(v1, 1);
  const V2 = squatDoc(v2, 2);
  // Everything the attacker can compute: public ids (H(appId/name), the sessionIds of both code
  // versions) and a few hashes of the appId a slot might be named by.
  const pub = await learnPublicIds([{ client: v1, model: V1 }, { client: v2, model: V2 }], appId, name);
  const slots = [
    ...new Set([
      pub.persistentId,
      b64sha(`${appId}/${name}`),
      ...pub.sessionIds,
      b64sha(appId),
      b64sha(`lockstep/v1/app-salt/${appId}`),
      b64sha(`lockstep/v2/persist/session/${pub.persistentId}`),
    ]),
  ];
  const squat = await squatSlots(r.url, slots, pub.persistentId);
  const text = `saved by v1 ${randomId(6)}`;
  const steps = [];
  let ok = false;
  try {
    const a = await honestJoin(v1, V1, { url: r.url, appId, name, password });
    steps.push("v1 joined");
    a.view.publish("doc", "set", text);
    if (!(await until(() => a.model.text === text, 5000))) throw new Error("v1 never applied its own event");
    await withTimeout(a.flushPersistence(), 8000, "flushPersistence");
    steps.push("saved");
    await withTimeout(a.leave(), 8000, "leave");
    const b = await honestJoin(v2, V2, { url: r.url, appId, name, password });
    steps.push("v2 joined");
    const restored = b.model.restored?.text;
    await withTimeout(b.leave(), 8000, "leave");
    ok = restored === text;
    steps.push(ok ? "v2 got the saved data in init" : `v2 init got ${JSON.stringify(restored ?? null)}`);
  } catch (error) {
    steps.push(`FAILED: ${error.message}`);
  }
  return {
    figure: `squatted ${slots.length} public slots via ${squat.method} (${fmtTally(squat.outcomes)}); honest: ${steps.join(" → ")}`,
    ok,
  };
}

// ============================================================================ attack 6: session squatting

/**
 * Attack 6: a raw Join of the public sessionId with the attacker's verifier, before two honest
 * clients join and must sync.
 * @param {import("../lib/scope.mjs").Scope} scope
 */
export async function attack6(scope) {
  const r = await scope.reflector("a6");
  const client = await loadClient("a6");
  const Counter = counterModel(client, "Probe.SquatCounter");
  const appId = "probe.session-squat";
  const name = `room-${randomId(6)}`;
  const password = "the honest password";
  const pub = await learnPublicIds([{ client, model: Counter }], appId, name);
  // The attacker creates the session the honest app would have had without keyed ids, with its own verifier.
  let squat;
  try {
    const c = await rawJoin(r.url, newIdentity({ sessionId: pub.sessionIds[0], persistentId: pub.persistentId }));
    scope.defer(() => c.terminate());
    c.send(encodeSend(randomBytes(100))); // and litters it
    squat = "attacker created the public sessionId with its own verifier";
  } catch (error) {
    squat = `attacker's Join of the public sessionId ${error.message}`;
  }
  const steps = [];
  let ok = false;
  try {
    const a = await honestJoin(client, Counter, { url: r.url, appId, name, password });
    scope.defer(() => a.leave());
    const b = await honestJoin(client, Counter, { url: r.url, appId, name, password });
    scope.defer(() => b.leave());
    steps.push("2/2 joined");
    const hashes = hashesWhen([a, b], (s) => s.model.marks >= 1);
    a.view.publish("probe", "inc");
    a.view.publish("probe", "mark");
    const [ha, hb] = await hashes;
    const counts = [a.model.count, b.model.count];
    steps.push(`event counted ${counts.join("/")}`, ha === hb ? "states equal" : "states DIFFER");
    ok = counts.every((n) => n === 1) && ha === hb;
  } catch (error) {
    steps.push(`FAILED: ${error.message}`);
  }
  return { figure: `${squat}; honest: ${steps.join(", ")}`, ok };
}

// ============================================================================ attack 9: replayed ciphertext

/**
 * Attack 9: an insider (a real client whose socket sends one Send 1 + 3 times) among two honest replicas.
 * @param {import("../lib/scope.mjs").Scope} scope
 */
export async function attack9(scope) {
  const r = await scope.reflector("a9");
  const client = await loadClient("a9");
  const Counter = counterModel(client, "Probe.ReplayCounter");
  const base = { url: r.url, appId: "probe.replay", name: `replay-${randomId(6)}`, password: "insiders know it" };
  let armed = false;
  let replays = 0;
  // The insider is an admitted member whose socket sends one Send frame 1 + 3 times.
  const insiderSocket = (url) => {
    const ws = new WebSocket(url, { maxPayload: 1024 * MiB });
    const send = ws.send.bind(ws);
    ws.send = (data, ...rest) => {
      send(data, ...rest);
      if (armed && data[1] === MessageType.Send) {
        armed = false;
        for (let i = 0; i < 3; i++, replays++) send(data);
      }
    };
    return ws;
  };
  const a = await honestJoin(client, Counter, base);
  scope.defer(() => a.leave());
  const b = await honestJoin(client, Counter, base);
  scope.defer(() => b.leave());
  const insider = await honestJoin(client, Counter, { ...base, socket: insiderSocket });
  scope.defer(() => insider.leave());
  const replicas = [a, b, insider];
  armed = true;
  insider.view.publish("probe", "inc");
  await until(() => replicas.every((s) => s.model.count >= 1), 5000);
  await sleep(300); // the replays are right behind
  const hashes = hashesWhen(replicas, (s) => s.model.marks >= 1);
  a.view.publish("probe", "mark");
  const [ha, ...rest] = await hashes;
  const counts = replicas.map((s) => s.model.count);
  const equal = rest.every((h) => h === ha);
  return {
    figure: `1 publish + ${replays} replays counted ${counts.join("/")} (honest, honest, insider); state hashes ${equal ? "equal" : "DIFFER"}`,
    ok: replays === 3 && counts.every((n) => n === 1) && equal,
  };
}
