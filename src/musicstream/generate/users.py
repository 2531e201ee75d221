"""The fixed set of app users, with their event-line fragments encoded once.

Every logged-in event repeats the user's name, gender, location, registration, agent and id.  Encoding
them once per user (instead of once per event) is most of what makes generation fast.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass

from musicstream.generate import names
from musicstream.generate.jsonfmt import log_float, log_str

# Every timestamp in the reference sample ends in .796 s (eventsim's clock started on such an instant);
# keeping that makes generated data indistinguishable in this respect, and costs nothing.
MS_OFFSET = 796
DAY_MS = 86_400_000


@dataclass(slots=True)
class User:
    """A user and the state that carries from one session to the next (``level``, ``busy_until``).

    The ``*_frag`` fields are the pieces of a logged-in event line around the per-event values; see
    :func:`musicstream.generate.sessions.run_session` for how they are put together.
    """

    user_id: str
    level: str
    activity: float
    fickle: bool
    head_frag: str
    last_frag: str
    loc_frag: str
    reg_frag: str
    tail_frag: str
    busy_until: int = 0  # epoch ms before which the user's last session (plus a pause) runs


def epoch_ms(day: datetime.date) -> int:
    """Milliseconds since the epoch at 00:00 UTC of ``day`` (the log files are cut at UTC midnight)."""
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()) * 1000


def _agent(rng: random.Random) -> str:
    agents = names.USER_AGENTS
    agent, quoted, _ = rng.choices(agents, weights=[w for _, _, w in agents])[0]
    return f'"{agent}"' if quoted else agent


def build_users(rng: random.Random, n_users: int, start: datetime.date) -> list[User]:
    """``n_users`` users, ids ``"1"`` to ``"n"``, all registered within 60 days before ``start``.

    Activity is log-normal, so a few users produce a large share of events as in the real sample.
    Heavier users are more often on the paid tier.  About one in ten is "fickle": likely to submit an
    upgrade or downgrade when they visit those pages, so that level changes in both directions occur.
    """
    start_ms = epoch_ms(start)
    users: list[User] = []
    for i in range(1, n_users + 1):
        gender = "F" if rng.random() < 0.56 else "M"
        first = rng.choice(names.FEMALE_FIRST_NAMES if gender == "F" else names.MALE_FIRST_NAMES)
        last = rng.choice(names.LAST_NAMES)
        location = rng.choice(names.METROS)
        registration = float(start_ms - rng.randint(43_200, 60 * 86_400) * 1000 + MS_OFFSET)
        activity = rng.lognormvariate(0.0, 1.0)
        level = "paid" if rng.random() < 0.35 + 0.5 * activity / (activity + 1.0) else "free"
        fickle = rng.random() < 0.1
        users.append(
            User(
                user_id=str(i),
                level=level,
                activity=activity,
                fickle=fickle,
                head_frag=(
                    f',"auth":"Logged In","firstName":{log_str(first)},"gender":{log_str(gender)},"itemInSession":'
                ),
                last_frag=f',"lastName":{log_str(last)},"length":',
                loc_frag=f'","location":{log_str(location)},"method":"',
                reg_frag=f'","registration":{log_float(registration)},"sessionId":',
                tail_frag=f',"userAgent":{log_str(_agent(rng))},"userId":{log_str(str(i))}}}',
            )
        )
    return users
