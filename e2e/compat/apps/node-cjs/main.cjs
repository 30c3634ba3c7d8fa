// Hello in Node from CommonJS, the way older Croquet apps were written: `require` and the
// original entry point `startSession(name, ModelRoot, ViewRoot, options)`. Run as
//   node main.cjs <session name> <password> <reflector url> <pings>
const Croquet = require("@croquet/croquet");

const [name, password, reflector, pings = "3"] = process.argv.slice(2);

class Greetings extends Croquet.Model {
  init() {
    this.hellos = 0;
    this.subscribe("greetings", "hello", this.hello);
  }

  hello(viewId) {
    this.hellos += 1;
    this.last = viewId;
    this.publish("greetings", "counted", this.hellos);
  }
}
Greetings.register("Greetings");

class Greeter extends Croquet.View {
  constructor(model) {
    super(model);
    this.subscribe("greetings", "counted", (total) => console.log(`hellos ${total}`));
    for (let i = 0; i < Number(pings); i++) this.publish("greetings", "hello", this.viewId);
  }
}

Croquet.startSession(name, Greetings, Greeter, {
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.nodecjs",
  password,
  reflector,
}).then((session) => {
  globalThis.session = session;
  console.log(`joined ${session.id}`);
});
