"""The Keras networks, each built by its own small function apart from the detector classes.

Every builder takes the window shape and hyper-parameters and returns a
compiled ``keras.Model`` (Adam, MSE). Layers are stock Keras 3 layers only, so models
reload from native ``.keras`` files with ``safe_mode=True``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_cnn_autoencoder", "build_lstm_forecaster", "build_rnn_autoencoder"]


def _rnn(cell: str) -> Any:
    import keras

    if cell == "lstm":
        return keras.layers.LSTM
    if cell == "gru":
        return keras.layers.GRU
    raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")


def build_lstm_forecaster(
    lookback: int, n_features: int, *, units: int = 50, layers: int = 2, dropout: float = 0.0, lr: float = 1e-3
) -> Any:
    """Window (lookback, n_features) -> next row (n_features,): stacked LSTMs then a Dense head."""
    import keras

    inputs = keras.Input(shape=(lookback, n_features))
    x = inputs
    for i in range(layers):
        x = keras.layers.LSTM(units, return_sequences=i < layers - 1, dropout=dropout)(x)
    outputs = keras.layers.Dense(n_features)(x)
    model = keras.Model(inputs, outputs, name="lstm_forecaster")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def build_rnn_autoencoder(
    lookback: int,
    n_features: int,
    *,
    latent: int = 64,
    cell: str = "lstm",
    attention: bool = False,
    dropout: float = 0.0,
    lr: float = 1e-3,
) -> Any:
    """Window -> RNN encoder (latent units) -> RepeatVector -> RNN decoder -> TimeDistributed Dense.

    With ``attention`` the decoder sequence attends (dot-product ``keras.layers.Attention``)
    over the encoder's per-step outputs before the Dense head.
    """
    import keras

    rnn = _rnn(cell)
    inputs = keras.Input(shape=(lookback, n_features))
    if attention:
        enc_seq = rnn(latent, return_sequences=True, dropout=dropout)(inputs)
        code = keras.layers.GlobalAveragePooling1D()(enc_seq)
    else:
        code = rnn(latent, dropout=dropout)(inputs)
    x = keras.layers.RepeatVector(lookback)(code)
    x = rnn(latent, return_sequences=True, dropout=dropout)(x)
    if attention:
        context = keras.layers.Attention()([x, enc_seq])
        x = keras.layers.Concatenate()([x, context])
    outputs = keras.layers.TimeDistributed(keras.layers.Dense(n_features))(x)
    name = f"{cell}_autoencoder" + ("_attention" if attention else "")
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def build_cnn_autoencoder(
    lookback: int, n_features: int, *, latent: int = 32, filters: int = 32, dropout: float = 0.0, lr: float = 1e-3
) -> Any:
    """1D-CNN autoencoder: Conv1D -> MaxPool -> Conv1D(latent) -> UpSampling -> Conv1D -> Conv1D(n_features).

    ``lookback`` must be even (one pooling step).
    """
    import keras

    if lookback % 2:
        raise ValueError(f"cnn autoencoder needs an even lookback, got {lookback}")
    inputs = keras.Input(shape=(lookback, n_features))
    x = keras.layers.Conv1D(filters, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(latent, 3, padding="same", activation="relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.UpSampling1D(2)(x)
    x = keras.layers.Conv1D(filters, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv1D(n_features, 3, padding="same")(x)
    model = keras.Model(inputs, outputs, name="cnn_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model
