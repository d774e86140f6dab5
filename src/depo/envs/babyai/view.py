"""What the agent sees in one BabyAI state, as text, plus the actions valid in that state.

The view is minigrid's own: the 7x7 square ahead of the agent (agent in the middle of the back
row), with walls and closed doors hiding what lies behind them (the same rule as
`Grid.process_vis`). Objects are named `<color> <type> <n>` (doors `<color> open|closed|locked door
<n>`), `<n>` counting objects of the same name nearest first. Macro actions are expanded by a
breadth-first search over (cell, direction) restricted to the floor the agent can see, so a macro
never relies on hidden parts of the map.

A `StateView` holds positions and names only (no minigrid objects), so clones of an environment
can share it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from minigrid.core.actions import Actions
from minigrid.core.grid import Grid
from minigrid.core.world_object import Key, WorldObj
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel

PRIMITIVES: dict[str, int] = {
    "turn left": int(Actions.left),
    "turn right": int(Actions.right),
    "move forward": int(Actions.forward),
    "pickup": int(Actions.pickup),
    "drop": int(Actions.drop),
    "toggle": int(Actions.toggle),
}
LEFT, RIGHT, FORWARD = int(Actions.left), int(Actions.right), int(Actions.forward)
PICKUP, DROP, TOGGLE = int(Actions.pickup), int(Actions.drop), int(Actions.toggle)
# minigrid's no-op: lets the verifier check "go to X" when the agent already faces X.
NO_OP = int(Actions.done)

# minigrid direction index -> unit step (0 = +x, 1 = +y, 2 = -x, 3 = -y).
DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))
PICKABLE = frozenset({"key", "ball", "box"})
MACRO_VERBS = ("go to", "pickup", "put next to", "go through", "toggle and go through")

AgentState = tuple[int, int, int]  # x, y, direction


@dataclass(frozen=True)
class SeenObject:
    name: str  # "red ball", "blue closed door"
    index: int  # 1 = nearest object of this name
    kind: str  # minigrid type: ball, key, box, door
    color: str
    pos: tuple[int, int]
    ahead: int  # steps in front of the agent
    right: int  # steps to the agent's right (negative: left)

    @property
    def label(self) -> str:
        return f"{self.name} {self.index}"


@dataclass(frozen=True)
class StateView:
    agent: AgentState
    objects: tuple[SeenObject, ...]
    actions: dict[str, tuple[int, ...]]  # available action -> the primitive minigrid actions
    macro_targets: dict[str, SeenObject]  # macro action -> the object it names
    macro_ends: dict[str, AgentState]  # macro action -> agent state once its moves are done
    text: str  # view description and available actions (without the goal line)


def object_name(obj: WorldObj) -> str:
    if obj.type == "door":
        state = "open" if obj.is_open else "locked" if obj.is_locked else "closed"
        return f"{obj.color} {state} door"
    return f"{obj.color} {obj.type}"


def steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def relative_position(ahead: int, right: int, speaker: bool = False) -> str:
    """`ahead`/`right` in words, addressed to the agent ("you") or said by it ("me")."""
    person, possessive = ("me", "my") if speaker else ("you", "your")
    side = f"{steps(abs(right))} to {possessive} {'right' if right > 0 else 'left'}"
    if right == 0:
        return f"{steps(ahead)} in front of {person}"
    if ahead == 0:
        return side
    return f"{steps(ahead)} in front of {person} and {side}"


def visible_cells(
    grid: Grid, agent: AgentState, size: int
) -> tuple[list[tuple[int, int, int, int, WorldObj | None]], int | None]:
    """Visible (x, y, ahead, right, cell) except the agent's own cell; steps to a wall straight ahead."""
    half = size // 2
    width, height, cells = grid.width, grid.height, grid.grid
    ax, ay, direction = agent
    fx, fy = DIRECTIONS[direction]
    rx, ry = -fy, fx
    # view[i][j]: column i (left to right), row j (far to near, the agent at (half, size - 1)).
    view: list[list[tuple[int, int, WorldObj | None, bool]]] = []
    for i in range(size):
        column = []
        for j in range(size):
            ahead, right = size - 1 - j, i - half
            x, y = ax + fx * ahead + rx * right, ay + fy * ahead + ry * right
            if 0 <= x < width and 0 <= y < height:
                cell = cells[y * width + x]
                opaque = cell is not None and not cell.see_behind()
            else:
                cell, opaque = None, True  # outside the map reads as wall
            column.append((x, y, cell, opaque))
        view.append(column)

    # Light spreads from the agent row by row away from it, sideways and diagonally forward,
    # and stops at opaque cells (minigrid's visibility rule).
    seen = [[False] * size for _ in range(size)]
    seen[half][size - 1] = True
    for j in range(size - 1, -1, -1):
        for i in range(size - 1):
            if seen[i][j] and not view[i][j][3]:
                seen[i + 1][j] = True
                if j > 0:
                    seen[i + 1][j - 1] = seen[i][j - 1] = True
        for i in range(size - 1, 0, -1):
            if seen[i][j] and not view[i][j][3]:
                seen[i - 1][j] = True
                if j > 0:
                    seen[i - 1][j - 1] = seen[i][j - 1] = True

    visible = []
    for i in range(size):
        for j in range(size - 1):  # the agent's row minus its own cell is handled below
            if seen[i][j]:
                x, y, cell, opaque = view[i][j]
                if not (opaque and cell is None):  # off-map cells are not reported
                    visible.append((x, y, size - 1 - j, i - half, cell))
        if i != half and seen[i][size - 1]:
            x, y, cell, opaque = view[i][size - 1]
            if not (opaque and cell is None):
                visible.append((x, y, 0, i - half, cell))

    wall_ahead = None
    for j in range(size - 2, -1, -1):
        x, y, cell, opaque = view[half][j]
        if opaque and (cell is None or cell.type == "wall"):
            wall_ahead = size - 1 - j
            break
        if cell is not None and not cell.can_overlap():
            break  # an object or closed door blocks the way first; it is listed with the objects
    return visible, wall_ahead


def floor_and_space(
    visible: list[tuple[int, int, int, int, WorldObj | None]], agent_cell: tuple[int, int]
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Visible cells the agent can stand on (plus its own), and visible empty cells (to drop on)."""
    floor, empty = {agent_cell}, set()
    for x, y, _, _, cell in visible:
        if cell is None:
            floor.add((x, y))
            empty.add((x, y))
        elif cell.can_overlap():
            floor.add((x, y))
    return floor, empty


class FloorSearch:
    """Breadth-first search over (cell, direction) on the visible floor, from the agent's state."""

    def __init__(self, start: AgentState, floor: set[tuple[int, int]]):
        self.parent: dict[AgentState, tuple[AgentState, int] | None] = {start: None}
        frontier = [start]
        while frontier:
            following = []
            for state in frontier:
                x, y, d = state
                dx, dy = DIRECTIONS[d]
                moves = ((x + dx, y + dy, d), FORWARD), ((x, y, (d - 1) % 4), LEFT), ((x, y, (d + 1) % 4), RIGHT)
                for (nx, ny, nd), action in moves:
                    nxt = (nx, ny, nd)
                    if nxt not in self.parent and (nx, ny) in floor:
                        self.parent[nxt] = (state, action)
                        following.append(nxt)
            frontier = following

    def path(self, goal: AgentState) -> tuple[int, ...]:
        actions = []
        link = self.parent[goal]
        while link is not None:
            goal, action = link
            actions.append(action)
            link = self.parent[goal]
        return tuple(reversed(actions))

    def nearest_facing(self, targets: list[tuple[int, int]]) -> tuple[tuple[int, ...], AgentState] | None:
        """The shortest path to a state facing one of `targets`, and that state."""
        best = None
        for tx, ty in targets:
            for d, (dx, dy) in enumerate(DIRECTIONS):
                state = (tx - dx, ty - dy, d)
                if state in self.parent:
                    path = self.path(state)
                    if best is None or len(path) < len(best[0]):
                        best = (path, state)
        return best


def build_view(env: RoomGridLevel) -> StateView:
    ax, ay, direction = int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir)
    visible, wall_ahead = visible_cells(env.grid, (ax, ay, direction), env.agent_view_size)
    carrying = env.carrying
    floor, empty = floor_and_space(visible, (ax, ay))
    seen_objects = []
    for x, y, ahead, right, cell in visible:
        if cell is not None and cell.type != "wall":
            seen_objects.append((abs(ahead) + abs(right), ahead, right, object_name(cell), cell, (x, y)))
    seen_objects.sort(key=lambda item: item[:3])
    counts: dict[str, int] = {}
    objects = []
    for _, ahead, right, name, cell, pos in seen_objects:
        counts[name] = counts.get(name, 0) + 1
        objects.append(SeenObject(name, counts[name], cell.type, cell.color, pos, ahead, right))

    width, cells = env.grid.width, env.grid.grid
    fx, fy = DIRECTIONS[direction]
    front = cells[(ay + fy) * width + ax + fx]
    actions: dict[str, tuple[int, ...]] = {"turn left": (LEFT,), "turn right": (RIGHT,)}
    if front is None or front.can_overlap():
        actions["move forward"] = (FORWARD,)
    if carrying is None and front is not None and front.can_pickup():
        actions["pickup"] = (PICKUP,)
    if carrying is not None and front is None:
        actions["drop"] = (DROP,)
    if front is not None and (front.type == "box" or (front.type == "door" and _can_toggle(front, carrying))):
        actions["toggle"] = (TOGGLE,)

    search = FloorSearch((ax, ay, direction), floor)
    macros: dict[str, list[tuple[str, tuple[int, ...], AgentState, SeenObject]]] = {v: [] for v in MACRO_VERBS}
    for seen in objects:
        approach = search.nearest_facing([seen.pos])
        if approach is not None:
            path, end = approach
            macros["go to"].append((f"go to {seen.label}", path or (NO_OP,), end, seen))
            if seen.kind in PICKABLE and carrying is None:
                macros["pickup"].append((f"pickup {seen.label}", path + (PICKUP,), end, seen))
            if seen.kind == "door":
                door = cells[seen.pos[1] * width + seen.pos[0]]
                if door.is_open or _can_toggle(door, carrying):
                    macros[_door_verb(door)].append(_through_door(env, seen, door, path, end))
        if carrying is not None:
            drop = search.nearest_facing(cells_beside(seen.pos, empty))
            if drop is not None:
                macros["put next to"].append((f"put next to {seen.label}", drop[0] + (DROP,), drop[1], seen))
    macro_targets, macro_ends = {}, {}
    for verb in MACRO_VERBS:
        for action, expansion, end, seen in macros[verb]:
            actions[action] = expansion
            macro_targets[action] = seen
            macro_ends[action] = end

    lines = [f"The {o.label} is {relative_position(o.ahead, o.right)}." for o in objects]
    if not objects:
        lines.append("You cannot see any objects.")
    if wall_ahead is not None:
        lines.append(f"You are facing a wall {steps(wall_ahead)} away.")
    lines.append(f"You are carrying a {object_name(carrying)}." if carrying else "You are not carrying anything.")
    lines.append(f"Available actions: {json.dumps(list(actions))}")
    return StateView(
        agent=(ax, ay, direction),
        objects=tuple(objects),
        actions=actions,
        macro_targets=macro_targets,
        macro_ends=macro_ends,
        text="\n".join(lines),
    )


def cells_beside(pos: tuple[int, int], empty: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """The cells of `empty` next to `pos`: dropping an object there puts it beside `pos`."""
    x, y = pos
    return [(x + dx, y + dy) for dx, dy in DIRECTIONS if (x + dx, y + dy) in empty]


def _can_toggle(door: WorldObj, carrying: WorldObj | None) -> bool:
    return not door.is_locked or (isinstance(carrying, Key) and carrying.color == door.color)


def _door_verb(door: WorldObj) -> str:
    return "go through" if door.is_open else "toggle and go through"


def _through_door(
    env: RoomGridLevel, seen: SeenObject, door: WorldObj, path: tuple[int, ...], end: AgentState
) -> tuple[str, tuple[int, ...], AgentState, SeenObject]:
    """Walk up to the door, open it if needed, step into the doorway and, if free, one step beyond."""
    moves = path + ((FORWARD,) if door.is_open else (TOGGLE, FORWARD))
    dx, dy = DIRECTIONS[end[2]]
    (x, y), final = seen.pos, (seen.pos[0], seen.pos[1], end[2])
    bx, by = x + dx, y + dy
    if 0 <= bx < env.grid.width and 0 <= by < env.grid.height:
        beyond = env.grid.grid[by * env.grid.width + bx]
        if beyond is None or beyond.can_overlap():
            moves, final = moves + (FORWARD,), (bx, by, end[2])
    return f"{_door_verb(door)} {seen.label}", moves, final, seen
