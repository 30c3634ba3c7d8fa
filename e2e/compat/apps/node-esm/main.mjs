// Hello in Node as an ES module: Croquet runs headless too (bots, servers, tests). Run as
//   node main.mjs <session name> <password> <reflector url> <pings>
// Each client says hello a few times; every client counts every hello.
import * as Croquet from "@croquet/croquet";

const [name, password, reflector, pings = "3"] = process.argv.slice(2);

class Greetings extends Croquet.Model {
  init() {
    this.hellos = 0;
    this.from = {};
    this.subscribe("greetings", "hello", this.hello);
    this.future(500).heartbeat();
  }

  hello(viewId) {
    this.hellos += 1;
    this.from[viewId] = (this.from[viewId] ?? 0) + 1;
    this.publish("greetings", "counted", this.hellos);
  }

  heartbeat() {
    this.beats = (this.beats ?? 0) + 1;
    this.future(500).heartbeat();
  }
}
Greetings.register("Greetings");

class Greeter extends Croquet.View {
  constructor(model) {
    super(model);
    this.model = model;
    this.subscribe("greetings", "counted", this.counted);
    for (let i = 0; i < Number(pings); i++) this.publish("greetings", "hello", this.viewId);
  }

  counted(total) {
    console.log(`hellos ${total}`);
  }
}

const session = await Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.nodehello",
  name,
  password,
  model: Greetings,
  view: Greeter,
  reflector,
});
globalThis.session = session;
console.log(`joined ${session.id} as ${session.view.viewId} (library ${Croquet.VERSION})`);
