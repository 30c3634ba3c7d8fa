// Hello World as a Croquet 2.x page writes it: the `Croquet` global from a script tag, a counter
// model ticking once a second, a view that shows it, a click that resets it for everyone.

class Counter extends Croquet.Model {
  init() {
    this.count = 0;
    this.subscribe("counter", "reset", this.resetCount);
    this.future(1000).tick();
  }

  resetCount() {
    this.count = 0;
    this.publish("counter", "changed");
  }

  tick() {
    this.count += 1;
    this.publish("counter", "changed");
    this.future(1000).tick();
  }
}
Counter.register("Counter");

class CounterView extends Croquet.View {
  constructor(model) {
    super(model);
    this.model = model;
    const display = document.getElementById("countDisplay");
    display.onclick = () => this.publish("counter", "reset");
    this.subscribe("counter", "changed", this.showCount);
    // Multisynq's hello world dims the page while the view is out of sync
    this.subscribe(this.sessionId, "synced", this.syncChanged);
    this.showCount();
  }

  showCount() {
    document.getElementById("countDisplay").textContent = String(this.model.count);
  }

  syncChanged(synced) {
    const status = document.getElementById("status");
    status.textContent = synced ? `in sync · session ${this.sessionId.slice(0, 8)}` : "catching up…";
    status.classList.toggle("behind", !synced);
  }
}

document.getElementById("version").textContent = `library ${Croquet.VERSION}`;

// No name and no password: Croquet takes them from the URL (?q=…, #pw=…) or makes them up.
Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.hello",
  model: Counter,
  view: CounterView,
}).then((session) => {
  window.session = session;
});
