"""Predict, then measure: a student's guess beside what the experiment found.

Every lesson has a prediction cell before an experiment: the student writes a
number (or a few words on the shape of a curve) while the result is still
unknown, and a cell after the experiment calls `versus` to put the two side
by side. Nothing here is graded: a wrong guess is how the lesson sticks.

    predicted_s = 4           # in the prediction cell, before the experiment
    ...
    versus(predicted_s, result["wall_s"], "s")
    # you predicted 4 s; measured 0.21 s: 0.052x your guess
"""

from numbers import Real

def _show(value, unit):
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{value:.3g}{' ' + unit if unit else ''}"
    return f"{value}{' ' + unit if unit and value is not None else ''}"


def versus(prediction, measured, unit=""):
    """Print the prediction next to the measurement; return measured / predicted
    when both are numbers (None otherwise)."""
    if prediction is None or prediction is ... or (isinstance(prediction, str) and not prediction.strip()):
        print(f"measured: {_show(measured, unit)}. (No prediction was written: write one before you "
              "run the experiment; it is the point of the exercise.)")
        return None
    numbers = all(isinstance(v, Real) and not isinstance(v, bool) for v in (prediction, measured))
    if not numbers:
        print(f"you predicted: {_show(prediction, unit)}\nmeasured:      {_show(measured, unit)}")
        return None
    if prediction == 0:
        print(f"you predicted 0; measured {_show(measured, unit)}")
        return None
    ratio = measured / prediction
    print(f"you predicted {_show(prediction, unit)}; measured {_show(measured, unit)}: {ratio:.2g}x your guess")
    return ratio
