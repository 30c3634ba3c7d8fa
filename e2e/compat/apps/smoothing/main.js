// View smoothing, after Croquet's tutorial of that name: the model moves every avatar in coarse
// steps (10 reflector ticks a second, three local ticks each); the view draws each avatar eased
// toward its model position every frame, so motion looks continuous.
import * as Croquet from "@croquet/croquet";

const STEP_MS = 100;
const SIZE = { width: 800, height: 560 };

class Avatar extends Croquet.Model {
  init({ viewId, speed }) {
    this.viewId = viewId;
    this.speed = speed;
    this.x = 100 + this.random() * (SIZE.width - 200);
    this.y = 100 + this.random() * (SIZE.height - 200);
    this.targetX = this.x;
    this.targetY = this.y;
    this.lastGoto = null;
    this.hue = Math.floor(this.random() * 360);
    this.subscribe(viewId, "goto", this.goto);
    this.future(STEP_MS).step();
  }

  goto({ x, y }) {
    this.lastGoto = { x, y };
    this.targetX = Math.max(0, Math.min(SIZE.width, x));
    this.targetY = Math.max(0, Math.min(SIZE.height, y));
  }

  step() {
    const dx = this.targetX - this.x;
    const dy = this.targetY - this.y;
    const distance = Math.hypot(dx, dy);
    const stride = 12 * this.speed;
    if (distance <= stride) {
      this.x = this.targetX;
      this.y = this.targetY;
      // wander off somewhere new once arrived
      this.targetX = this.random() * SIZE.width;
      this.targetY = this.random() * SIZE.height;
    } else {
      this.x += (dx / distance) * stride;
      this.y += (dy / distance) * stride;
    }
    this.future(STEP_MS).step();
  }
}
Avatar.register("Avatar");

class Plaza extends Croquet.Model {
  init(options) {
    // `speed` is a session option that the URL may set (?speed=2): see optionsFromUrl below
    this.speed = Number(options.speed) || 1;
    this.avatars = new Map();
    this.subscribe(this.sessionId, "view-join", this.arrive);
    this.subscribe(this.sessionId, "view-exit", this.leave);
  }

  arrive(viewId) {
    this.avatars.set(viewId, Avatar.create({ viewId, speed: this.speed }));
  }

  leave(viewId) {
    this.avatars.get(viewId)?.destroy();
    this.avatars.delete(viewId);
  }
}
Plaza.register("Plaza");

class PlazaView extends Croquet.View {
  constructor(plaza) {
    super(plaza);
    this.plaza = plaza;
    this.canvas = document.getElementById("canvas");
    this.context = this.canvas.getContext("2d");
    this.smoothed = new Map();
    this.canvas.onclick = (event) => this.publish(this.viewId, "goto", { x: event.offsetX, y: event.offsetY });
    // Apps embedded in an iframe talk to their container through the Messenger; guarded, as the
    // examples do, because a page on its own has no container.
    if (Croquet.Messenger && window.parent !== window) {
      Croquet.Messenger.setReceiver(this);
      Croquet.Messenger.on("goto", "gotoFromParent");
      Croquet.Messenger.send("ready", { viewId: this.viewId });
    }
  }

  gotoFromParent(data) {
    this.publish(this.viewId, "goto", data);
  }

  update() {
    const ctx = this.context;
    ctx.clearRect(0, 0, SIZE.width, SIZE.height);
    for (const [viewId, avatar] of this.plaza.avatars) {
      let drawn = this.smoothed.get(viewId);
      if (!drawn) this.smoothed.set(viewId, (drawn = { x: avatar.x, y: avatar.y }));
      // ease a fraction of the way each frame: smooth, and never far behind the model
      drawn.x += (avatar.x - drawn.x) * 0.2;
      drawn.y += (avatar.y - drawn.y) * 0.2;
      ctx.fillStyle = `hsl(${avatar.hue}, 70%, ${viewId === this.viewId ? 40 : 65}%)`;
      ctx.beginPath();
      ctx.arc(drawn.x, drawn.y, 18, 0, Math.PI * 2);
      ctx.fill();
    }
    for (const viewId of this.smoothed.keys()) if (!this.plaza.avatars.has(viewId)) this.smoothed.delete(viewId);
    document.getElementById("info").textContent = `${this.plaza.avatars.size} avatars · speed ${this.plaza.speed}`;
  }
}

Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.smoothing",
  model: Plaza,
  view: PlazaView,
  options: { speed: 1 },
  optionsFromUrl: ["speed"],
  tps: "10x3",
}).then((session) => {
  window.session = session;
});
