"""Walk-forward fold planning: expanding-window, chronological folds over a ticker's windows.

Folds follow Tashman (2000), "Out-of-sample tests of forecasting accuracy", and Hyndman &
Athanasopoulos, *FPP* 3rd ed., 5.10 "time series cross-validation": the last
``holdout_fraction`` of the windows is cut into ``folds`` consecutive test blocks; fold k trains
on every window before its block; nothing is shuffled across time. Within a training part the
last ``validation_fraction`` of windows is the validation set.

For a horizon of ``h`` trading days, a window's target lies ``h`` days after its last day, so
the ``h - 1`` windows just before a test block have targets inside it. They are left out of
that fold's training part (the "gap" of de Prado, *Advances in Financial Machine Learning*,
7.4 "purging"): everything a fold trains or validates on was known on its first test day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_FIT_WINDOWS = 30
"""Fewest windows a fold may fit on (below this the backtest raises)."""


@dataclass(frozen=True)
class Fold:
    """Window index ranges of one fold (indices into :class:`~analytics.features.Windows`).

    ``fit`` + ``validation`` is the training part, all before ``test``. ``number`` 0 is the
    first backtest fold; the final model (no test block) uses ``number`` -1.
    """

    number: int
    fit: range
    validation: range
    test: range


def walk_forward_folds(
    n_windows: int, holdout_fraction: float, folds: int, validation_fraction: float,
    horizon: int = 1,
) -> list[Fold]:
    """Expanding-window folds over ``n_windows`` chronologically ordered windows.

    Args:
        n_windows: windows with a known target (consecutive days, one window per day).
        holdout_fraction: share of windows in the test blocks, in (0, 1).
        folds: number of consecutive test blocks (>= 1).
        validation_fraction: share of each training part kept for validation, in (0, 1).
        horizon: trading days from a window's last day to its target; a fold's training part
            ends ``horizon - 1`` windows before its test block (see the module docstring).

    Returns:
        ``folds`` folds; test blocks are contiguous, cover the last
        ``max(folds, round(n_windows * holdout_fraction))`` windows and differ in size by at
        most one.

    Raises:
        ValueError: a fold would fit on fewer than :data:`MIN_FIT_WINDOWS` windows; the
            message gives the counts.
    """
    n_test = max(folds, int(round(n_windows * holdout_fraction)))
    blocks = np.array_split(np.arange(n_windows - n_test, n_windows), folds)
    out = []
    for number, block in enumerate(blocks):
        start = int(block[0])
        fit, validation = _split_training(start - (horizon - 1), validation_fraction)
        if len(fit) < MIN_FIT_WINDOWS:
            raise ValueError(
                f"{n_windows} windows are too few for {folds} folds holding out "
                f"{holdout_fraction:.0%}: fold {number} would fit on {len(fit)} windows "
                f"(at least {MIN_FIT_WINDOWS})"
            )
        out.append(Fold(number, fit, validation, range(start, int(block[-1]) + 1)))
    return out


def final_fold(n_windows: int, validation_fraction: float) -> Fold:
    """The final model's split: every window, the last ``validation_fraction`` for validation.

    Raises:
        ValueError: fewer than :data:`MIN_FIT_WINDOWS` windows would remain to fit on.
    """
    fit, validation = _split_training(n_windows, validation_fraction)
    if len(fit) < MIN_FIT_WINDOWS:
        raise ValueError(f"{n_windows} windows are too few to fit on (at least "
                         f"{MIN_FIT_WINDOWS} after validation)")
    return Fold(-1, fit, validation, range(n_windows, n_windows))


def _split_training(n_train: int, validation_fraction: float) -> tuple[range, range]:
    n_val = max(1, int(round(n_train * validation_fraction)))
    return range(0, n_train - n_val), range(n_train - n_val, n_train)
