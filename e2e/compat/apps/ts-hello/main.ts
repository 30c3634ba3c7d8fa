// Hello in TypeScript, as a Croquet TypeScript project writes it: typed model and view classes
// against the library's own type declarations (here those of the aliased package).
import * as Croquet from "@croquet/croquet";

interface Click {
  viewId: string;
}

class Tally extends Croquet.Model {
  total = 0;
  perView: Record<string, number> = {};

  override init(): void {
    this.subscribe("tally", "click", this.click);
    this.subscribe(this.sessionId, "view-exit", this.gone);
  }

  click(data: Click): void {
    this.total += 1;
    this.perView[data.viewId] = (this.perView[data.viewId] ?? 0) + 1;
    this.publish("tally", "changed", this.total);
  }

  gone(viewId: string): void {
    delete this.perView[viewId];
  }
}
Tally.register("Tally");

class TallyView extends Croquet.View {
  readonly tally: Tally;

  constructor(model: Tally) {
    super(model);
    this.tally = model;
    const button = document.getElementById("plus") as HTMLButtonElement;
    button.onclick = () => this.publish("tally", "click", { viewId: this.viewId } satisfies Click);
    this.subscribe("tally", "changed", this.show);
    this.show();
  }

  show(): void {
    document.getElementById("clicks")!.textContent = String(this.tally.total);
    document.getElementById("who")!.textContent = `you clicked ${this.tally.perView[this.viewId] ?? 0} times`;
  }
}

const session = await Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.tshello",
  name: Croquet.App.autoSession(),
  password: Croquet.App.autoPassword(),
  model: Tally,
  view: TallyView,
});
Object.assign(window, { session });
