"""The pure case state machine: the seven-step loop plus return, reopen, merge and cancel.

``apply(facts, command)`` either returns the next :class:`CaseFacts` or raises
:class:`TransitionError` carrying a stable ``reason`` (the API answers 409). No I/O,
no clock: timestamps and storage are the service's job.

    reported → registered → dispatched → accepted → handling → feedback → verified → closed → evaluated
    dispatched/accepted --return--> returned --dispatch--> dispatched
    feedback --verify(fail)--> handling (rework + 1)
    any open state --cancel--> cancelled, --merge--> merged
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final


class State(StrEnum):
    """Where a case is in the loop."""

    REPORTED = "reported"
    REGISTERED = "registered"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    HANDLING = "handling"
    FEEDBACK = "feedback"
    VERIFIED = "verified"
    CLOSED = "closed"
    EVALUATED = "evaluated"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    MERGED = "merged"


class Action(StrEnum):
    """What someone does to a case."""

    REGISTER = "register"
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    HANDLE = "handle"
    PAUSE = "pause"
    RESUME = "resume"
    FEEDBACK = "feedback"
    VERIFY = "verify"
    CLOSE = "close"
    EVALUATE = "evaluate"
    RETURN = "return"
    MERGE = "merge"
    CANCEL = "cancel"


TERMINAL: Final = frozenset({State.EVALUATED, State.CANCELLED, State.MERGED})
OPEN_STATES: Final = frozenset(State) - TERMINAL - {State.CLOSED}
#: Simple moves; verify, cancel and merge are handled in :func:`apply`.
TRANSITIONS: Final[dict[tuple[State, Action], State]] = {
    (State.REPORTED, Action.REGISTER): State.REGISTERED,
    (State.REGISTERED, Action.DISPATCH): State.DISPATCHED,
    (State.RETURNED, Action.DISPATCH): State.DISPATCHED,
    (State.DISPATCHED, Action.ACCEPT): State.ACCEPTED,
    (State.DISPATCHED, Action.RETURN): State.RETURNED,
    (State.ACCEPTED, Action.RETURN): State.RETURNED,
    (State.ACCEPTED, Action.HANDLE): State.HANDLING,
    (State.HANDLING, Action.PAUSE): State.HANDLING,
    (State.HANDLING, Action.RESUME): State.HANDLING,
    (State.HANDLING, Action.FEEDBACK): State.FEEDBACK,
    (State.VERIFIED, Action.CLOSE): State.CLOSED,
    (State.CLOSED, Action.EVALUATE): State.EVALUATED,
}
#: Roles allowed to take each action (checked by the service against the acting person).
ACTION_ROLES: Final[dict[Action, frozenset[str]]] = {
    Action.REGISTER: frozenset({"operator", "supervisor", "admin"}),
    Action.DISPATCH: frozenset({"operator", "supervisor", "admin"}),
    Action.ACCEPT: frozenset({"grid_worker", "force_member"}),
    Action.HANDLE: frozenset({"grid_worker", "force_member"}),
    Action.PAUSE: frozenset({"grid_worker", "force_member"}),
    Action.RESUME: frozenset({"grid_worker", "force_member"}),
    Action.FEEDBACK: frozenset({"grid_worker", "force_member"}),
    Action.VERIFY: frozenset({"supervisor", "operator", "admin", "grid_worker"}),
    Action.CLOSE: frozenset({"supervisor", "operator", "admin"}),
    Action.EVALUATE: frozenset({"supervisor", "resident", "admin"}),
    Action.RETURN: frozenset({"grid_worker", "force_member"}),
    Action.MERGE: frozenset({"operator", "supervisor", "admin"}),
    Action.CANCEL: frozenset({"operator", "supervisor", "admin"}),
}


class TransitionError(Exception):
    """A refused transition; ``reason`` is a stable code, ``state``/``action`` say where, ``missing`` what is owed."""

    def __init__(self, reason: str, state: State, action: str, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.state = state
        self.action = action
        self.message = message
        self.missing = missing


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the machine needs to know about a case."""

    state: State = State.REPORTED
    assignees: frozenset[str] = frozenset()
    handler_id: str | None = None
    rework_count: int = 0
    paused: bool = False
    merged_into: int | None = None
    satisfaction: int | None = None
    verified_by: str | None = None
    #: Plan steps (recover, review) that must be done before the case may close.
    close_blockers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    """One action by one person, with its parameters (assignees, result, reason, target, score)."""

    action: str
    actor_id: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _refuse(reason: str, facts: CaseFacts, action: str, message: str) -> TransitionError:
    return TransitionError(reason, facts.state, action, message)


def allowed_actions(facts: CaseFacts) -> list[str]:
    """Actions that the current state accepts (ignoring who acts)."""
    out = [a.value for (s, a) in TRANSITIONS if s == facts.state]
    if facts.state == State.FEEDBACK:
        out.append(Action.VERIFY.value)
    if facts.state in OPEN_STATES:
        out += [Action.CANCEL.value, Action.MERGE.value]
    return out


def apply(facts: CaseFacts, command: Command) -> CaseFacts:
    """The facts after ``command``; raise :class:`TransitionError` when it is not allowed."""
    try:
        action = Action(command.action)
    except ValueError:
        raise _refuse("unknown_action", facts, command.action, f"unknown action {command.action!r}") from None
    actor, params = command.actor_id, command.params
    if action in (Action.CANCEL, Action.MERGE):
        if facts.state not in OPEN_STATES:
            raise _refuse("illegal_transition", facts, action, f"cannot {action} a {facts.state} case")
        if action is Action.CANCEL:
            if not str(params.get("reason") or "").strip():
                raise _refuse("reason_required", facts, action, "cancel needs a reason")
            return replace(facts, state=State.CANCELLED, paused=False)
        target = params.get("into")
        if not isinstance(target, int) or isinstance(target, bool):
            raise _refuse("merge_target_required", facts, action, "merge needs an integer 'into' case id")
        return replace(facts, state=State.MERGED, merged_into=target, paused=False)
    if action is Action.VERIFY:
        if facts.state != State.FEEDBACK:
            raise _refuse("illegal_transition", facts, action, f"cannot verify a {facts.state} case")
        if actor == facts.handler_id:
            raise _refuse("verifier_is_handler", facts, action, "the handler cannot verify their own work")
        result = params.get("result")
        if result == "pass":
            return replace(facts, state=State.VERIFIED, verified_by=actor)
        if result == "fail":
            return replace(facts, state=State.HANDLING, rework_count=facts.rework_count + 1)
        raise _refuse("bad_result", facts, action, "verify needs result 'pass' or 'fail'")
    target_state = TRANSITIONS.get((facts.state, action))
    if target_state is None:
        raise _refuse("illegal_transition", facts, action, f"cannot {action} a {facts.state} case")
    if action is Action.CLOSE and facts.close_blockers:
        owed = ", ".join(facts.close_blockers)
        message = f"the emergency plan's steps {owed} must be done before the case closes"
        raise TransitionError("plan_steps_open", facts.state, action, message, facts.close_blockers)
    return _simple(facts, action, actor, params, target_state)


def _simple(facts: CaseFacts, action: Action, actor: str, params: Mapping[str, Any], target: State) -> CaseFacts:
    if action is Action.DISPATCH:
        assignees = params.get("assignees")
        if not assignees or not all(isinstance(a, str) for a in assignees):
            raise _refuse("assignee_required", facts, action, "dispatch needs at least one assignee")
        return replace(facts, state=target, assignees=frozenset(assignees), handler_id=None)
    if action is Action.ACCEPT:
        if actor not in facts.assignees:
            raise _refuse("not_assignee", facts, action, f"{actor} is not assigned to this case")
        return replace(facts, state=target, handler_id=actor)
    if action is Action.RETURN:
        if actor not in facts.assignees:
            raise _refuse("not_assignee", facts, action, f"{actor} is not assigned to this case")
        if not str(params.get("reason") or "").strip():
            raise _refuse("reason_required", facts, action, "return needs a reason")
        return replace(facts, state=target, assignees=frozenset(), handler_id=None)
    if action in (Action.HANDLE, Action.PAUSE, Action.RESUME, Action.FEEDBACK) and actor != facts.handler_id:
        raise _refuse("not_handler", facts, action, f"only the handler {facts.handler_id} may {action}")
    if action is Action.PAUSE:
        if facts.paused:
            raise _refuse("already_paused", facts, action, "the case is already waiting for the resident")
        return replace(facts, paused=True)
    if action is Action.RESUME:
        if not facts.paused:
            raise _refuse("not_paused", facts, action, "the case is not paused")
        return replace(facts, paused=False)
    if action is Action.FEEDBACK and facts.paused:
        raise _refuse("paused", facts, action, "resume the case before giving feedback")
    if action is Action.EVALUATE:
        score = params.get("satisfaction")
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise _refuse("bad_satisfaction", facts, action, "evaluate needs satisfaction 1..5")
        return replace(facts, state=target, satisfaction=score)
    return replace(facts, state=target)
