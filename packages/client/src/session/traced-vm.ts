import type { DebugLog } from "../kernel/debug-log";
import type { Model } from "../kernel/model";
import { SYSTEM_EVENTS, VirtualMachine, topicOf, type VMHost } from "../kernel/vm";

/** What a VM constructor looks like to {@link bootVM}: the plain one, or {@link tracedVM}'s. */
export type VMClass = new (host: VMHost, state?: unknown) => VirtualMachine;

/** A model as the logs name it: `Counter#M3`. */
function nameOf(model: Model): string {
  return `${model.constructor.name}#${model.id}`;
}

/**
 * The VM class for a session's debug flags: with `subscribe`, `publish` or `events` on, a VM that
 * logs model subscriptions, model publishes and the model handlers an event reaches; otherwise the
 * plain VM (so a session without those flags pays nothing, not even a check).
 */
export function tracedVM(debug: DebugLog): VMClass {
  if (!debug.subscribe && !debug.publish && !debug.events) return VirtualMachine;
  return class TracedVirtualMachine extends VirtualMachine {
    override subscribe(model: Model, scope: string, event: string, method: string): void {
      if (debug.subscribe) debug.log(`${nameOf(model)} subscribed to "${topicOf(scope, event)}" (${method})`);
      super.subscribe(model, scope, event, method);
    }

    override unsubscribe(model: Model, scope: string, event: string, method?: string): void {
      if (debug.subscribe) debug.log(`${nameOf(model)} unsubscribed from "${topicOf(scope, event)}"${method === undefined ? "" : ` (${method})`}`);
      super.unsubscribe(model, scope, event, method);
    }

    override unsubscribeAll(model: Model): void {
      if (debug.subscribe) debug.log(`${nameOf(model)} unsubscribed from everything`);
      super.unsubscribeAll(model);
    }

    override publish(scope: string, event: string, data: unknown): void {
      const topic = topicOf(scope, event);
      if (debug.publish) debug.log(`${scope === this.sessionId && SYSTEM_EVENTS.has(event) ? "session" : "model"} published "${topic}" at t=${this.time}`, data);
      if (debug.events && this.hasModelSubscribers(topic)) debug.log(`event "${topic}" → model handlers`, data);
      super.publish(scope, event, data);
    }
  };
}
