import { Model } from "@lockstep/client";

/**
 * The shared counter: counts up once a second of session time; any user can reset it.
 * Every client runs this same code on the same events, so every client shows the same count.
 */
export class HelloModel extends Model {
  count = 0;

  override init(): void {
    this.subscribe("counter", "reset", this.reset);
    this.future(1000).tick();
  }

  tick(): void {
    this.count++;
    this.publish("counter", "changed", this.count);
    this.future(1000).tick();
  }

  reset(): void {
    this.count = 0;
    this.publish("counter", "changed", this.count);
  }
}
HelloModel.register("HelloModel");
