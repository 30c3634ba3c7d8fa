import { Session, View } from "@lockstep/client";
import { HelloModel } from "./model";

/** Shows the count; a click anywhere resets it for everyone. */
class HelloView extends View {
  readonly #model: HelloModel;
  readonly #display = document.getElementById("count")!;

  constructor(model: HelloModel) {
    super(model);
    this.#model = model;
    this.subscribe("counter", "changed", this.show);
    this.show();
    document.getElementById("reset")!.onclick = () => this.publish("counter", "reset");
  }

  show(): void {
    this.#display.textContent = String(this.#model.count);
  }

  override detach(): void {
    super.detach();
    document.getElementById("reset")!.onclick = null;
  }
}

const params = new URLSearchParams(location.search);
const session = await Session.join({
  appId: "dev.lockstep.hello",
  name: params.get("q") ?? "hello",
  password: new URLSearchParams(location.hash.slice(1)).get("pw") ?? "hello-demo",
  model: HelloModel,
  view: HelloView,
  reflector: params.get("reflector") ?? `ws://${location.hostname}:8787/`,
});
document.getElementById("session")!.textContent = `session ${session.id.slice(0, 8)} · view ${session.viewId}`;
