// A small asteroids-like game, built the way Croquet games are: a root model with many child
// models (rocks, ships, shots) stepped by one future() loop, shared random numbers, per-player
// input scopes, helper functions in Constants, and a view that extrapolates motion between model
// steps and shows the session's health every frame. Arrow keys steer, space fires.
import * as Croquet from "@croquet/croquet";

const Q = Croquet.Constants;
Q.W = 800;
Q.H = 600;
Q.STEP_MS = 50;
Q.ROCKS = 36;
Q.SHOT_LIFE = 24;
// helper code lives in Constants so that it is part of the session's identity
Q.wrap = (value, max) => ((value % max) + max) % max;
Q.points = (size) => Math.round(120 / size);

/** Where something new appears: drawn from the session's random numbers, so model code only. */
function spawnPoint(model) {
  if (!Croquet.Model.isExecuting()) throw new Error("spawnPoint() uses the model's random numbers: call it from model code");
  return { x: model.random() * Q.W, y: model.random() * Q.H };
}

class Mover extends Croquet.Model {
  move() {
    this.x = Q.wrap(this.x + this.dx, Q.W);
    this.y = Q.wrap(this.y + this.dy, Q.H);
  }
}
Mover.register("Mover");

class Rock extends Mover {
  init({ x, y, size }) {
    const angle = this.random() * Math.PI * 2;
    const speed = 0.5 + this.random() * (60 / size);
    Object.assign(this, { x, y, size, dx: Math.cos(angle) * speed, dy: Math.sin(angle) * speed });
  }
}
Rock.register("Rock");

class Shot extends Mover {
  init({ x, y, dx, dy, owner }) {
    Object.assign(this, { x, y, dx, dy, owner, life: Q.SHOT_LIFE });
  }
}
Shot.register("Shot");

class Ship extends Mover {
  init({ viewId, color }) {
    Object.assign(this, spawnPoint(this), { viewId, color, dx: 0, dy: 0, heading: -Math.PI / 2, turning: 0, thrust: false, score: 0 });
    this.subscribe(viewId, "steer", (steer) => this.steer(steer));
    this.subscribe(viewId, "fire", () => this.fire());
  }

  steer({ turning, thrust }) {
    this.turning = Math.max(-1, Math.min(1, Number(turning) || 0));
    this.thrust = thrust === true;
  }

  fire() {
    const arena = this.wellKnownModel("modelRoot");
    if (arena.shots.filter((s) => s.owner === this.viewId).length >= 4) return;
    const dx = Math.cos(this.heading);
    const dy = Math.sin(this.heading);
    arena.shots.push(Shot.create({ x: this.x + dx * 14, y: this.y + dy * 14, dx: this.dx + dx * 9, dy: this.dy + dy * 9, owner: this.viewId }));
  }

  move() {
    this.heading += this.turning * 0.15;
    if (this.thrust) {
      this.dx += Math.cos(this.heading) * 0.4;
      this.dy += Math.sin(this.heading) * 0.4;
    }
    this.dx *= 0.98;
    this.dy *= 0.98;
    super.move();
  }
}
Ship.register("Ship");

class Arena extends Croquet.Model {
  init() {
    this.ships = new Map();
    this.rocks = [];
    this.shots = [];
    this.wave = 0;
    this.steps = 0;
    this.subscribe(this.sessionId, "view-join", (info) => this.shipArrives(info));
    this.subscribe(this.sessionId, "view-exit", (viewId) => this.shipLeaves(viewId));
    this.subscribe("arena", "restart", () => this.nextWave());
    this.nextWave();
    this.future(Q.STEP_MS).step();
  }

  shipArrives({ viewId, viewData }) {
    const color = typeof viewData?.color === "string" ? viewData.color : "#fff";
    this.ships.set(viewId, Ship.create({ viewId, color }));
  }

  shipLeaves(viewId) {
    this.ships.get(viewId)?.destroy();
    this.ships.delete(viewId);
  }

  nextWave() {
    for (const rock of this.rocks) rock.destroy();
    this.rocks = [];
    this.wave += 1;
    for (let i = 0; i < Q.ROCKS; i++) this.rocks.push(Rock.create({ ...spawnPoint(this), size: 10 + Math.floor(this.random() * 3) * 10 }));
  }

  step() {
    this.steps += 1;
    for (const mover of [...this.rocks, ...this.shots, ...this.ships.values()]) mover.move();
    for (const shot of [...this.shots]) {
      shot.life -= 1;
      const rock = this.rocks.find((r) => Math.hypot(r.x - shot.x, r.y - shot.y) < r.size);
      if (rock) this.hit(rock, shot);
      if (rock || shot.life <= 0) {
        this.shots.splice(this.shots.indexOf(shot), 1);
        shot.destroy();
      }
    }
    if (this.rocks.length === 0) this.nextWave();
    this.future(Q.STEP_MS).step();
  }

  hit(rock, shot) {
    const ship = this.ships.get(shot.owner);
    if (ship) ship.score += Q.points(rock.size);
    this.rocks.splice(this.rocks.indexOf(rock), 1);
    if (rock.size > 10) for (let i = 0; i < 2; i++) this.rocks.push(Rock.create({ x: rock.x, y: rock.y, size: rock.size - 10 }));
    rock.destroy();
    this.publish("arena", "hit", { x: rock.x, y: rock.y });
  }
}
Arena.register("Arena");

class ArenaView extends Croquet.View {
  constructor(arena) {
    super(arena);
    this.arena = arena;
    this.ctx = document.getElementById("canvas").getContext("2d");
    this.hud = document.getElementById("hud");
    this.keys = new Set();
    this.flashes = [];
    this.onKey = (event) => this.key(event);
    document.addEventListener("keydown", this.onKey);
    document.addEventListener("keyup", this.onKey);
    this.subscribe("arena", "hit", (at) => this.flashes.push({ ...at, until: this.now() + 300 }));
  }

  key(event) {
    if (event.code === "Space" && event.type === "keydown") return this.publish(this.viewId, "fire");
    if (!["ArrowLeft", "ArrowRight", "ArrowUp"].includes(event.code)) return;
    if (event.type === "keydown") this.keys.add(event.code);
    else this.keys.delete(event.code);
    const turning = (this.keys.has("ArrowRight") ? 1 : 0) - (this.keys.has("ArrowLeft") ? 1 : 0);
    this.publish(this.viewId, "steer", { turning, thrust: this.keys.has("ArrowUp") });
  }

  update() {
    // how far past the last model step this frame is, in steps: draw everything that far along
    const ahead = Math.min(1.5, Math.max(0, (this.extrapolatedNow() - this.now()) / Q.STEP_MS));
    const at = (m) => [Q.wrap(m.x + m.dx * ahead, Q.W), Q.wrap(m.y + m.dy * ahead, Q.H)];
    const ctx = this.ctx;
    ctx.fillStyle = "#05060a";
    ctx.fillRect(0, 0, Q.W, Q.H);
    ctx.strokeStyle = "#889";
    for (const rock of this.arena.rocks) {
      const [x, y] = at(rock);
      ctx.beginPath();
      ctx.arc(x, y, rock.size, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.fillStyle = "#ffd";
    for (const shot of this.arena.shots) ctx.fillRect(...at(shot), 3, 3);
    for (const ship of this.arena.ships.values()) {
      const [x, y] = at(ship);
      ctx.save();
      ctx.translate(x, y);
      ctx.rotate(ship.heading);
      ctx.strokeStyle = ship.color;
      ctx.lineWidth = ship.viewId === this.viewId ? 3 : 1.5;
      ctx.beginPath();
      ctx.moveTo(14, 0);
      ctx.lineTo(-9, 8);
      ctx.lineTo(-9, -8);
      ctx.closePath();
      ctx.stroke();
      ctx.restore();
    }
    this.flashes = this.flashes.filter((f) => f.until > this.now());
    ctx.fillStyle = "rgba(255, 160, 60, .6)";
    for (const f of this.flashes) ctx.fillRect(f.x - 6, f.y - 6, 12, 12);
    // the session's health, read every frame as Croquet's own apps do
    const controller = this.realm.vm.controller;
    const scores = [...this.arena.ships.values()].map((s) => `${s.viewId === this.viewId ? "you" : s.viewId.slice(0, 4)} ${s.score}`);
    this.hud.textContent = `wave ${this.arena.wave} · rocks ${this.arena.rocks.length} · ${scores.join(" · ")}\n`
      + `users ${controller.users} · backlog ${Math.round(controller.backlog)} ms · starvation ${Math.round(controller.starvation)} ms`;
  }

  detach() {
    super.detach();
    document.removeEventListener("keydown", this.onKey);
    document.removeEventListener("keyup", this.onKey);
  }
}

const palette = ["#f66", "#6f6", "#69f", "#fc3", "#f6f", "#6ff"];
Croquet.Session.join({
  apiKey: "1_compat_suite_placeholder",
  appId: "io.lockstep.compat.rocks",
  model: Arena,
  view: ArenaView,
  viewData: { color: palette[Math.floor(Math.random() * palette.length)] },
}).then((session) => {
  window.session = session;
});
