"""The CNN-LSTM network behind ``PumpDumpDetector``, kept apart from training and scoring.

Two branches: Conv1D layers find local patterns (a burst of volume, a price step) in the
market sequence and an LSTM reads their order; the social sequence gets a smaller copy. The
social branch's output is multiplied by the ``has_social`` flag, so a missing social feed is
an explicit zero the dense head also sees as a 0 flag (the detector trains with social
randomly dropped so it learns that case).
"""

from __future__ import annotations

from typing import Any

__all__ = ["average_model", "build_pump_network", "member_loss"]


def build_pump_network(
    steps: int,
    market_features: int,
    social_features: int,
    *,
    filters: int = 16,
    lstm_units: int = 32,
    dense_units: int = 16,
    dropout: float = 0.1,
    input_noise: float = 0.0,
    wide: bool = False,
    learning_rate: float = 2e-3,
    focal: bool = False,
) -> Any:
    """Compiled Keras model: inputs ``market`` (steps, market_features), ``social`` (steps,
    social_features), ``has_social`` (1,); output P(pump now), shape (batch, 1).

    ``input_noise`` is the std of the Gaussian noise added to the (standardised) market inputs
    during training; ``wide`` adds a linear term on the last (scored) row to the logit.
    """
    import keras
    from keras import layers

    market = keras.Input((steps, market_features), name="market")
    social = keras.Input((steps, social_features), name="social")
    has_social = keras.Input((1,), name="has_social")

    m = layers.GaussianNoise(input_noise)(market) if input_noise > 0 else market
    m = layers.Conv1D(filters, 3, padding="causal", activation="relu")(m)
    m = layers.Conv1D(filters, 3, padding="causal", activation="relu")(m)
    m = layers.LSTM(lstm_units)(m)

    s = layers.Conv1D(max(filters // 2, 4), 3, padding="causal", activation="relu")(social)
    s = layers.LSTM(max(lstm_units // 4, 4))(s)
    s = layers.Multiply()([s, has_social])

    x = layers.Concatenate()([m, s, has_social])
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    logit = layers.Dense(1, name="deep_logit")(x)
    if wide:  # the scored row's own features, straight to the logit (Cropping1D keeps the model serialisable)
        last = layers.Flatten()(layers.Cropping1D((steps - 1, 0))(market))
        logit = layers.Add()([logit, layers.Dense(1, name="wide_logit")(last)])
    out = layers.Activation("sigmoid", name="p_pump")(logit)

    model = keras.Model({"market": market, "social": social, "has_social": has_social}, out, name="pump_cnn_lstm")
    loss: Any = keras.losses.BinaryFocalCrossentropy(gamma=2.0) if focal else "binary_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    return model


def average_model(members: list[Any]) -> Any:
    """One Keras model whose output is the mean of the members' P(pump) (saved as one ``.keras`` file)."""
    import keras

    inputs = {name: keras.Input(t.shape[1:], name=name) for name, t in members[0].input.items()}
    outs = []
    for k, member in enumerate(members):
        member.name = f"member_{k}"  # nested models need distinct names to be saved
        outs.append(member(inputs))
    out = keras.layers.Average(name="p_pump_mean")(outs)
    return keras.Model(inputs, out, name="pump_ensemble")


def member_loss(loss: str, k: int) -> str:
    """Loss of ensemble member ``k``: ``"mixed"`` alternates listwise+BCE (even k) and BCE (odd k).

    Why mix: the listwise loss ranks the rows of one event (what the event hit rate measures)
    while the row-wise BCE keeps scores comparable across events (what pooled AUC-PR needs).
    """
    if loss != "mixed":
        return loss
    return "listwise+bce" if k % 2 == 0 else "bce"
