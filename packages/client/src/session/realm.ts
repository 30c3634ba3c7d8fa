import { UsageError } from "../errors";
import type { Model } from "../kernel/model";
import { topicOf, type VirtualMachine } from "../kernel/vm";
import type { ViewDomain } from "../view/domain";
import type { PublishOptions, ViewRealm } from "../view/view";
import type { Publisher } from "./publisher";
import { isRejoining, replicaOf, type ControllerState } from "./states";
import type { Stream } from "./stream";
import { CompatRealm, type CompatHost } from "./compat-realm";
import type { CroquetViewRealm } from "../view/realm-compat";

/** What a {@link SessionRealm} reads of its session's controller. */
export interface RealmHost {
  /** The controller's state now. */
  readonly state: ControllerState;
  /** The app's handle of the session (`view.session`). */
  readonly session: unknown;
  readonly stream: Stream;
  readonly publisher: Publisher;
  /** Asks the connection to send what the publisher bundled this turn (at its end, or before any other frame). */
  wake(): void;
  /** What `view.realm` (Croquet's) reads besides the above; without it views have no `realm`. */
  readonly compat?: Pick<CompatHost, "timers" | "rate" | "ids">;
}

/**
 * What the views of one session see of it (`ViewRealm`): its ids, model time and session time,
 * well-known models, and publishing — live, or queued while the session reconnects.
 */
export class SessionRealm implements ViewRealm {
  readonly viewId: string;
  readonly sessionId: string;
  readonly domain: ViewDomain;
  readonly #host: RealmHost;
  readonly #wake: () => void;

  constructor(viewId: string, sessionId: string, domain: ViewDomain, host: RealmHost) {
    this.viewId = viewId;
    this.sessionId = sessionId;
    this.domain = domain;
    this.#host = host;
    this.#wake = () => host.wake();
  }

  get session(): unknown {
    return this.#host.session;
  }

  #croquet: CompatRealm | undefined;

  /** `view.realm` for Croquet apps, made on first use. */
  get croquet(): CroquetViewRealm | undefined {
    const host = this.#host;
    const compat = host.compat;
    if (compat === undefined) return undefined;
    this.#croquet ??= new CompatRealm({
      ...compat,
      get state() {
        return host.state;
      },
      get session() {
        return host.session;
      },
      stream: host.stream,
    });
    return this.#croquet;
  }

  /** The VM the app sees (live, or the last one booted). */
  get vm(): VirtualMachine {
    const replica = replicaOf(this.#host.state);
    if (!replica) throw new Error("session not started");
    return replica.vm;
  }

  modelTime(): number {
    return this.vm.time;
  }

  externalNow(): number {
    return this.#host.stream.externalTime;
  }

  extrapolatedNow(): number {
    return this.#host.stream.extrapolatedTime();
  }

  wellKnownModel(name: string): Model | undefined {
    return this.vm.wellKnownModel(name);
  }

  publish(scope: string, event: string, data: unknown, options?: PublishOptions): void {
    const s = this.#host.state;
    // Live, or building the root view right after this client's own view-join (its constructor may
    // publish). Catching up after a resume is not live yet: what the old connection sent goes first.
    const live = s.kind === "joined" || (s.kind === "syncing" && s.resumeAt === undefined && s.replica?.hasJoined === true);
    // Reconnecting or asleep, the event is queued until the session is live again.
    if (!live && !isRejoining(s)) throw new UsageError(`cannot publish "${scope}:${event}": the session is ${s.kind}`);
    const debug = this.domain.debug;
    if (debug.publish) debug.log(`view published "${topicOf(scope, event)}"`, data);
    const kept = this.#host.publisher.publish(scope, event, data, options, live ? this.#wake : undefined);
    // debug=sends: what goes to the reflector, before it is encrypted (the wire carries only ciphertext).
    if (debug.sends) debug.log(kept ? `${live ? "sending" : "queued until reconnected:"} "${topicOf(scope, event)}"` : `dropped while not connected: "${topicOf(scope, event)}"`, data);
    if (kept) this.domain.deliver(topicOf(scope, event), data);
  }
}
