"""The scripted BabyAI expert: privileged planning over the true grid, acting through the text actions.

It reads the mission's verifier (which objects count, which sub-instruction is pending) and the full
grid. When the object it needs is in view it uses the one macro that finishes the job (`go to`,
`pickup`, `put next to`, or opening a door); otherwise it follows a shortest path to the goal,
taking a visible door macro when that door lies on a shortest path and a single primitive move
otherwise. Distances come from a breadth-first search backwards from the goal states over
(cell, direction), cached per layout so clones searching one episode share them.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from minigrid.core.world_object import Wall, WorldObj
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
from minigrid.envs.babyai.core.verifier import (
    AfterInstr,
    AndInstr,
    BeforeInstr,
    GoToInstr,
    Instr,
    ObjDesc,
    OpenInstr,
    PickupInstr,
    PutNextInstr,
)

from depo.agent.react import AgentTurn
from depo.envs.babyai.view import (
    DIRECTIONS,
    NO_OP,
    FloorSearch,
    StateView,
    cells_beside,
    floor_and_space,
    object_name,
    relative_position,
    visible_cells,
)

UNREACHABLE = -1


class PlanCache:
    """Distance-to-goal maps of one episode, least recently used dropped beyond `capacity`."""

    def __init__(self, capacity: int = 512):
        self.capacity = capacity
        self._maps: OrderedDict[tuple, list[int]] = OrderedDict()

    def distances(self, key: tuple, compute) -> list[int]:
        found = self._maps.get(key)
        if found is None:
            found = self._maps[key] = compute()
            if len(self._maps) > self.capacity:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(key)
        return found


@dataclass(frozen=True)
class _Layout:
    """Where every movable object and door is now, and which cells the agent can cross."""

    width: int
    height: int
    passable: list[bool]  # per cell: empty, open door, or a door it can open
    movable: list[bool]  # per cell: an object the agent could pick up to clear the way
    empty: list[bool]  # per cell: nothing there (a place to drop an object)
    positions: dict[int, tuple[int, int]]  # id(object) -> its cell
    blocked: tuple[int, ...]  # non-wall cells the agent cannot cross (the part of the layout that changes)

    @classmethod
    def scan(cls, game: RoomGridLevel) -> _Layout:
        width, height, cells = game.grid.width, game.grid.height, game.grid.grid
        passable = [cell is None for cell in cells]
        empty = passable.copy()
        movable = [False] * len(cells)
        positions, blocked = {}, []
        for index, cell in enumerate(cells):
            if cell is None or cell.__class__ is Wall:
                continue
            positions[id(cell)] = (index % width, index // width)
            # Closed doors count as crossable: opening one costs a single toggle.
            if cell.can_overlap() or (cell.type == "door" and not cell.is_locked):
                passable[index] = True
            else:
                blocked.append(index)
                movable[index] = cell.can_pickup()
        return cls(width, height, passable, movable, empty, positions, tuple(blocked))

    def distances_to(self, goals: set[tuple[int, int, int]], through_objects: bool = False) -> list[int]:
        """Fewest primitive moves from each (x, y, direction) to a goal state (UNREACHABLE if none).

        With `through_objects`, cells holding an object count as crossable (it can be moved away).
        """
        width = self.width
        crossable = [a or b for a, b in zip(self.passable, self.movable)] if through_objects else self.passable
        distance = [UNREACHABLE] * (width * self.height * 4)
        frontier = []
        for x, y, d in goals:
            code = (y * width + x) * 4 + d
            if distance[code] == UNREACHABLE:
                distance[code] = 0
                frontier.append(code)
        level = 0
        offsets = [dx + dy * width for dx, dy in DIRECTIONS]
        while frontier:
            level += 1
            following = []
            for code in frontier:
                cell, d = divmod(code, 4)
                # A turn left from d+1 or right from d-1 reaches d; a forward step from the cell behind.
                behind = cell - offsets[d]
                predecessors = [cell * 4 + (d + 1) % 4, cell * 4 + (d - 1) % 4]
                if 0 <= behind < len(crossable) and crossable[behind]:
                    predecessors.append(behind * 4 + d)
                for previous in predecessors:
                    if distance[previous] == UNREACHABLE:
                        distance[previous] = level
                        following.append(previous)
            frontier = following
        return distance

    def facing(self, targets: list[tuple[int, int]]) -> set[tuple[int, int, int]]:
        """States on crossable cells that face one of `targets`."""
        states = set()
        for tx, ty in targets:
            for d, (dx, dy) in enumerate(DIRECTIONS):
                x, y = tx - dx, ty - dy
                if 0 <= x < self.width and 0 <= y < self.height and self.passable[y * self.width + x]:
                    states.add((x, y, d))
        return states

    def beside(self, targets: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Empty cells next to one of `targets` (where a dropped object ends up beside it)."""
        cells = []
        for tx, ty in targets:
            for dx, dy in DIRECTIONS:
                x, y = tx + dx, ty + dy
                if 0 <= x < self.width and 0 <= y < self.height and self.empty[y * self.width + x]:
                    cells.append((x, y))
        return cells


def pending_instruction(instr: Instr) -> Instr:
    """The single action instruction the mission's verifier is waiting for now."""
    if isinstance(instr, BeforeInstr):
        return pending_instruction(instr.instr_b if instr.a_done == "success" else instr.instr_a)
    if isinstance(instr, AfterInstr):
        return pending_instruction(instr.instr_a if instr.b_done == "success" else instr.instr_b)
    if isinstance(instr, AndInstr):
        return pending_instruction(instr.instr_b if instr.a_done == "success" else instr.instr_a)
    return instr


def describe(desc: ObjDesc) -> str:
    words = " ".join(word for word in (desc.color, desc.type or "object") if word)
    return f"{'the' if len(desc.obj_set) == 1 else 'a'} {words}"


@dataclass(frozen=True)
class _Subgoal:
    verb: str  # the finishing macro: "go to", "pickup", "put next to", "open"
    targets: list[tuple[int, int]]  # cells of the objects that count
    phrase: str  # what the agent is looking for, in words


def _subgoal(game: RoomGridLevel, layout: _Layout) -> _Subgoal:
    instr = pending_instruction(game.instrs)

    def cells_of(objects: list[WorldObj]) -> list[tuple[int, int]]:
        return [layout.positions[id(obj)] for obj in objects if id(obj) in layout.positions]

    if isinstance(instr, GoToInstr):
        return _Subgoal("go to", [tuple(map(int, pos)) for pos in instr.desc.obj_poss], describe(instr.desc))
    if isinstance(instr, PickupInstr):
        return _Subgoal("pickup", cells_of(instr.desc.obj_set), describe(instr.desc))
    if isinstance(instr, OpenInstr):
        return _Subgoal("open", cells_of(instr.desc.obj_set), describe(instr.desc))
    if isinstance(instr, PutNextInstr):
        if game.carrying is not None and any(game.carrying is obj for obj in instr.desc_move.obj_set):
            fixed = [tuple(map(int, pos)) for pos in instr.desc_fixed.obj_poss]
            return _Subgoal("put next to", fixed, describe(instr.desc_fixed))
        return _Subgoal("pickup", cells_of(instr.desc_move.obj_set), describe(instr.desc_move))
    raise TypeError(f"the BabyAI expert cannot plan for instruction type {type(instr).__name__}")


def expert_turn(game: RoomGridLevel, view: StateView, plans: PlanCache) -> AgentTurn:
    return _Planner(game, view, plans).turn()


class _Planner:
    """One expert decision in one state."""

    def __init__(self, game: RoomGridLevel, view: StateView, plans: PlanCache):
        self.game, self.view = game, view
        self.layout = layout = _Layout.scan(game)
        self.goal = goal = _subgoal(game, layout)
        self.targets = set(goal.targets)
        if goal.verb == "put next to":
            goal_states = layout.facing(layout.beside(goal.targets))
        else:
            goal_states = layout.facing(goal.targets)
        key = (goal.verb, tuple(sorted(goal.targets)), layout.blocked)
        self.distance = plans.distances(key, lambda: layout.distances_to(goal_states))
        if self.dist(view.agent) == UNREACHABLE:
            # Boxed in by objects: plan through them; the ones in the way get picked up and moved.
            self.distance = plans.distances(
                (*key, "through objects"), lambda: layout.distances_to(goal_states, through_objects=True)
            )
        self.here = self.dist(view.agent)
        x, y, d = view.agent
        dx, dy = DIRECTIONS[d]
        self.ahead = (x + dx, y + dy, d)
        self.left, self.right = (x, y, (d - 1) % 4), (x, y, (d + 1) % 4)
        self.on_way_ahead = self.here != UNREACHABLE and self.dist(self.ahead) == self.here - 1
        seen_target = next((seen for seen in view.objects if seen.pos in self.targets), None)
        self.target_words = f"the {seen_target.label}" if seen_target else goal.phrase
        self.target_in_view = seen_target is not None

    def dist(self, state: tuple[int, int, int]) -> int:
        x, y, d = state
        return self.distance[(y * self.layout.width + x) * 4 + d]

    def turn(self) -> AgentTurn:
        if self.game.carrying is not None and self.goal.verb == "pickup":
            return self.free_hands()
        return self.finishing_move() or self.turn_to_see() or self.door_on_the_way() or self.primitive_step()

    def free_hands(self) -> AgentTurn:
        """Drop what is carried, off the way to the goal, before picking up the goal's object."""
        thing = object_name(self.game.carrying)
        if "drop" in self.view.actions and not self.on_way_ahead:
            return AgentTurn(f"I need my hands free for {self.goal.phrase}, so I will drop the {thing}.", "drop")
        return AgentTurn(f"I need a free spot out of my way to drop the {thing}, so I will turn left.", "turn left")

    def finishing_move(self) -> AgentTurn | None:
        """The move that completes the pending instruction when its object is in view and reachable."""
        view, goal = self.view, self.goal
        if goal.verb == "open" and self.ahead[:2] in self.targets:
            door = next(seen for seen in view.objects if seen.pos == self.ahead[:2])
            state = "closed" if "closed" in door.name else "open, so I will close it and then open it again"
            return AgentTurn(f"The {door.label} right in front of me is {state}; I will toggle it.", "toggle")
        verbs = ("toggle and go through", "go to") if goal.verb == "open" else (goal.verb,)
        best = None
        for action, seen in view.macro_targets.items():
            verb = action[: -len(seen.label) - 1]
            if verb in verbs and seen.pos in self.targets:
                rank = (verbs.index(verb), len(view.actions[action]))
                if best is None or rank < best[0]:
                    best = (rank, action, seen)
        if best is None:
            return None
        _, action, seen = best
        where = f"the {seen.label} is {relative_position(seen.ahead, seen.right, speaker=True)}"
        if goal.verb == "go to":
            if view.actions[action] == (NO_OP,):
                return AgentTurn(f"I am already facing the {seen.label}, so I will {action} to confirm.", action)
            return AgentTurn(f"The {where[4:]}. I will {action}.", action)
        if goal.verb == "pickup":
            return AgentTurn(f"I need {goal.phrase} and {where}. I will {action}.", action)
        if goal.verb == "put next to":
            held = object_name(self.game.carrying)
            return AgentTurn(f"I am holding the {held} and {where}. I will {action}.", action)
        if action.startswith("toggle"):
            return AgentTurn(f"The {where[4:]}. I will {action}.", action)
        return AgentTurn(f"The {where[4:]}; I will {action} so I can toggle it.", action)

    def turn_to_see(self) -> AgentTurn | None:
        """Turn towards the goal's object when it is out of view but would be in reach from this cell."""
        if self.target_in_view:
            return None
        x, y, d = self.view.agent
        around = "turn left" if self.dist(self.left) <= self.dist(self.right) else "turn right"
        for action, facing in (("turn left", self.left), ("turn right", self.right), (around, (x, y, (d + 2) % 4))):
            if self._finishable_from(facing):
                side = "behind me" if facing[2] == (d + 2) % 4 else f"to my {action.split()[1]}"
                phrase = self.goal.phrase
                return AgentTurn(f"{phrase[0].upper()}{phrase[1:]} is not in view, so I will {action} to look {side}.", action)
        return None

    def _finishable_from(self, state: tuple[int, int, int]) -> bool:
        """Would the finishing macro be available in `state` (goal object seen and reachable)?"""
        visible, _ = visible_cells(self.game.grid, state, self.game.agent_view_size)
        targets = [(x, y) for x, y, _, _, _ in visible if (x, y) in self.targets]
        if not targets:
            return False
        floor, empty = floor_and_space(visible, state[:2])
        search = FloorSearch(state, floor)
        if self.goal.verb == "put next to":
            return any(search.nearest_facing(cells_beside(target, empty)) for target in targets)
        return search.nearest_facing(targets) is not None

    def door_on_the_way(self) -> AgentTurn | None:
        """A visible door macro whose end lies on a shortest path to the goal."""
        if self.here == UNREACHABLE:
            return None
        best = None
        for action, end in self.view.macro_ends.items():
            if not action.startswith(("go through", "toggle and go through")):
                continue
            after, moves = self.dist(end), len(self.view.actions[action])
            # The distance map prices a closed door like an open one, so a toggle is one extra move.
            if after != UNREACHABLE and after < self.here and after + moves <= self.here + action.startswith("toggle"):
                if best is None or (after, moves) < best[0]:
                    best = ((after, moves), action)
        if best is None:
            return None
        action = best[1]
        reason = f"To reach {self.target_words}," if self.target_in_view else f"I cannot see {self.target_words} from here, so"
        return AgentTurn(f"{reason} I will {action}.", action)

    def primitive_step(self) -> AgentTurn:
        """The first move of a shortest path; clearing a closed door or an object in the way."""
        target = self.target_words
        if self.here == UNREACHABLE:
            return AgentTurn(f"I see no way to reach {target} from here, so I will turn left and look around.", "turn left")
        if self.on_way_ahead and "move forward" not in self.view.actions:
            blocker = next(seen for seen in self.view.objects if seen.pos == self.ahead[:2])
            if blocker.kind == "door":
                return AgentTurn(f"The {blocker.label} in front of me is on my way, so I will toggle it.", "toggle")
            if "pickup" in self.view.actions:
                return AgentTurn(f"The {blocker.label} blocks my way, so I will pick it up to move it.", "pickup")
        for action, state in (("move forward", self.ahead), ("turn left", self.left), ("turn right", self.right)):
            if action in self.view.actions and self.dist(state) == self.here - 1:
                if self.target_in_view:
                    return AgentTurn(f"I will {action} to get closer to {target}.", action)
                purpose = "explore" if action == "move forward" else "look around"
                return AgentTurn(f"I cannot see {target} yet, so I will {action} to {purpose}.", action)
        return AgentTurn(f"My way to {target} is blocked, so I will turn left and look around.", "turn left")
