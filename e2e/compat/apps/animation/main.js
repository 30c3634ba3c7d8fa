// Bouncing balls in the manner of Croquet's "simple animation" tutorial: a root model owns child
// models that each step themselves with future(); one view per ball mirrors its position.
import * as Croquet from "@croquet/croquet";

const FIELD = { width: 800, height: 560 };
const STEP_MS = 50;

class Ball extends Croquet.Model {
  init({ x, y }) {
    this.x = x;
    this.y = y;
    const angle = this.random() * Math.PI * 2;
    const speed = 2 + this.random() * 4;
    this.dx = Math.cos(angle) * speed;
    this.dy = Math.sin(angle) * speed;
    this.color = `hsl(${Math.floor(this.random() * 360)}, 80%, 60%)`;
    this.future(STEP_MS).step();
  }

  step() {
    this.x += this.dx;
    this.y += this.dy;
    if (this.x < 20 || this.x > FIELD.width - 20) this.dx = -this.dx;
    if (this.y < 20 || this.y > FIELD.height - 20) this.dy = -this.dy;
    this.publish(this.id, "moved");
    this.future(STEP_MS).step();
  }
}
Ball.register("Ball");

class Field extends Croquet.Model {
  init() {
    this.balls = [];
    for (let i = 0; i < 8; i++) this.addBall({ x: 100 + i * 80, y: 100 + (i % 4) * 100 });
    this.subscribe("field", "add", this.addBall);
    this.subscribe("field", "remove", this.removeBall);
  }

  addBall(at) {
    if (this.balls.length >= 40) return;
    const ball = Ball.create(at);
    this.balls.push(ball);
    this.publish("field", "added", ball);
  }

  removeBall(id) {
    const ball = this.balls.find((b) => b.id === id);
    if (!ball) return;
    this.balls = this.balls.filter((b) => b !== ball);
    ball.destroy();
    this.publish("field", "removed", id);
  }
}
Field.register("Field");

class BallView extends Croquet.View {
  constructor(ball) {
    super(ball);
    this.ball = ball;
    this.element = document.createElement("div");
    this.element.className = "ball";
    this.element.style.background = ball.color;
    this.element.onclick = (event) => {
      event.stopPropagation();
      this.publish("field", "remove", ball.id);
    };
    document.getElementById("field").appendChild(this.element);
    this.subscribe(ball.id, { event: "moved", handling: "oncePerFrame" }, this.move);
    this.move();
  }

  move() {
    this.element.style.left = `${this.ball.x}px`;
    this.element.style.top = `${this.ball.y}px`;
  }

  detach() {
    super.detach();
    this.element.remove();
  }
}

class FieldView extends Croquet.View {
  constructor(field) {
    super(field);
    this.field = field;
    this.views = new Map();
    const element = document.getElementById("field");
    element.onclick = (event) => this.publish("field", "add", { x: event.offsetX, y: event.offsetY });
    for (const ball of field.balls) this.attach(ball);
    this.subscribe("field", "added", this.attach);
    this.subscribe("field", "removed", this.drop);
  }

  attach(ball) {
    this.views.set(ball.id, new BallView(ball));
    document.getElementById("info").textContent = `${this.views.size} balls`;
  }

  drop(id) {
    this.views.get(id)?.detach();
    this.views.delete(id);
    document.getElementById("info").textContent = `${this.views.size} balls`;
  }

  detach() {
    super.detach();
    for (const view of this.views.values()) view.detach();
  }
}

// 100 ticks a second is more than a reflector sends: Croquet clamps it to its maximum
Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.animation",
  name: Croquet.App.autoSession(),
  password: Croquet.App.autoPassword(),
  model: Field,
  view: FieldView,
  tps: 100,
}).then((session) => {
  window.session = session;
});
