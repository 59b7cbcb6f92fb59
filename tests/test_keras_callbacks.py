"""Keras 3's own callback tests, ported to fastopt with their golden values
and tolerances unchanged.

Source: keras-team/keras at commit 3422977a5e38fb2f7709aaa9a08e47f0c43d0f60,
keras/src/callbacks/: learning_rate_scheduler_test.py,
reduce_lr_on_plateau_test.py, csv_logger_test.py, lambda_callback_test.py,
model_checkpoint_test.py, early_stopping_test.py, monitor_callback_test.py,
terminate_on_nan_test.py, callback_test.py.  (progbar_logger has no test file
in Keras; fastopt's progress tests are in tests/test_callbacks.py.)

How they are re-expressed:
- Keras' ``test_utils.get_test_data`` (stratified synthetic classes) and
  ``to_categorical`` are rebuilt below with NumPy; models are fastopt
  ``Sequential`` models of the same layer sizes.
- fastopt trains with the mean squared error (its one loss so far) and the
  metrics ``mse``/``mae``: where a test compiles ``mae``,
  ``categorical_crossentropy``, softmax outputs or accuracy/AUC/F1 metrics,
  the model uses ``mse`` and a linear output and watches ``val_mae`` where
  Keras watches ``val_acc`` (the mode, thresholds and expected outcome kept).
- Keras compares its float32 learning-rate variable with ``assertEqual``;
  fastopt keeps the rate as a Python float (float64), so those comparisons
  are made to float32 resolution (``rel=1e-7``).
- ``assertLogs`` on Keras' logging becomes ``capsys`` on stdout, where
  fastopt's callbacks print.
- Checkpoint paths end in ``.npz`` (fastopt refuses Keras' ``.keras``/``.h5``).

Left out, and why:
- terminate_on_nan ``test_raise_error_terminate_preserves_backup``:
  BackupAndRestore is not in fastopt.
- terminate_on_nan ``test_raise_error_terminate_stops_on_later_batch``:
  fastopt's TerminateOnNaN checks once per epoch (so that fit need not stop
  after every batch); its message names the epoch, not the batch.
- terminate_on_nan tests with ``y = inf`` targets: fastopt refuses non-finite
  data with a ValueError, so they use a finite target whose square overflows
  (``1e200`` in a float64 model; fastopt sums losses in float64) to make the
  loss infinite.
- model_checkpoint Case 15 (``val_auc`` with ``metrics.AUC()``): fastopt has no
  AUC metric (the ``auc`` direction is checked in test_monitor_op_logic).
- model_checkpoint Case 6 expects a warning for ``mode='unknown'``; fastopt
  refuses bad arguments, so it checks for a ValueError.
- callback_test ``test_model_state_is_current_on_epoch_end`` subclasses
  ``keras.Model`` with a variable updated in ``call``; it is re-expressed as
  "the optimizer's iterations are current in each batch hook".
- Tests that need batch-level hooks from ``fit`` (ModelCheckpoint with an
  integer ``save_freq``, LambdaCallback batch hooks), ``evaluate``/``predict``
  with ``callbacks=``, ``validation_freq`` or ``save_weights`` run only when
  fastopt's fit/evaluate/predict/Sequential have them (skipped otherwise).
"""
import csv
import inspect
import os
import re
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt import callbacks, layers

Sequential = fo.Sequential


# -- helpers as in Keras' test_utils / numerical_utils ------------------------------------------

def get_test_data(train_samples, test_samples, input_shape, num_classes, random_seed=None):
    """Balanced classes around random templates, shuffled and split per class."""
    rng = np.random.default_rng(random_seed)
    total = train_samples + test_samples
    per_class = total // num_classes
    y = np.array([i for i in range(num_classes) for _ in range(per_class)]
                 + [i % num_classes for i in range(total - per_class * num_classes)])
    templates = 2 * num_classes * rng.random((num_classes,) + input_shape)
    x = (templates[y] + rng.normal(size=(total,) + input_shape)).astype(np.float32)
    idx = rng.permutation(total)
    x, y = x[idx], y[idx]
    train, test = [], []
    for cls in range(num_classes):
        where = rng.permutation(np.where(y == cls)[0])
        count = int(train_samples / num_classes)
        train.extend(where[:count])
        test.extend(where[count:])
    train, test = rng.permutation(train), rng.permutation(test)
    return (x[train], y[train]), (x[test], y[test])


def to_categorical(y, num_classes=None):
    num_classes = num_classes or int(y.max()) + 1
    return np.eye(num_classes, dtype=np.float32)[y]


def fit_calls_batch_hooks() -> bool:
    seen = []
    probe = callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    model = Sequential([layers.Dense(1, input_shape=(1,))])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 1)), np.zeros(4), batch_size=2, epochs=1, verbose=0, callbacks=[probe])
    return seen == [0, 1]


BATCH_HOOKS = pytest.mark.skipif(not fit_calls_batch_hooks(), reason="fit does not call batch-level hooks yet")
SAVE_WEIGHTS = pytest.mark.skipif(not hasattr(Sequential, "save_weights"),
                                  reason="Sequential has no save_weights yet")


def takes(method, argument):
    return argument in inspect.signature(method).parameters


# -- learning_rate_scheduler_test.py ------------------------------------------------------------

@pytest.fixture
def lrs_setup():
    (x_train, y_train), _ = get_test_data(train_samples=10, test_samples=10, input_shape=(3,), num_classes=2)
    y_train = to_categorical(y_train)
    model = Sequential([layers.Dense(5), layers.Dense(2)])
    model.compile(loss="mse", optimizer="sgd")
    return model, x_train, y_train


def test_lrs_updates_learning_rate(lrs_setup, capsys):
    model, x_train, y_train = lrs_setup
    lr_scheduler = callbacks.LearningRateScheduler(lambda step: 1.0 / (2.0 + step), verbose=1)
    model.fit(x_train, y_train, callbacks=[lr_scheduler], epochs=1)
    assert model.optimizer.learning_rate == 0.5


def test_lrs_verbose_logging(lrs_setup, capsys):
    model, x_train, y_train = lrs_setup
    lr_scheduler = callbacks.LearningRateScheduler(lambda step: 1.0 / (1.0 + step), verbose=1)
    model.fit(x_train, y_train, callbacks=[lr_scheduler], epochs=1)
    expected_log = "LearningRateScheduler setting learning rate to 1.0"
    assert expected_log in capsys.readouterr().out


def test_lrs_schedule_dependent_on_previous_learning_rate(lrs_setup):
    model, x_train, y_train = lrs_setup
    lr_scheduler = callbacks.LearningRateScheduler(lambda step, lr: lr / 2)
    initial_lr = 0.03
    model.compile(loss="mse", optimizer=fo.optimizers.Adam(initial_lr))
    model.fit(x_train, y_train, callbacks=[lr_scheduler], epochs=2)
    assert model.optimizer.learning_rate == initial_lr / 4.0


def test_lrs_throws_when_optimizer_has_schedule(lrs_setup):
    model, x_train, y_train = lrs_setup
    lr_scheduler = callbacks.LearningRateScheduler(lambda step, lr: lr / 2)
    model.compile(loss="mse", optimizer=fo.optimizers.Adam(
        fo.optimizers.schedules.PolynomialDecay(initial_learning_rate=0.1, decay_steps=10)))
    with pytest.raises(TypeError, match="This optimizer was created with a `LearningRateSchedule`"):
        model.fit(x_train, y_train, callbacks=[lr_scheduler], epochs=2)


def test_lrs_learning_rate_in_history(lrs_setup):
    model, x_train, y_train = lrs_setup
    lr_scheduler = callbacks.LearningRateScheduler(lambda step, lr: 0.5)
    history = model.fit(x_train, y_train, callbacks=[lr_scheduler], epochs=1)
    assert "learning_rate" in history.history
    assert type(history.history["learning_rate"][0]) is float
    assert history.history["learning_rate"][0] == 0.5


# -- reduce_lr_on_plateau_test.py ---------------------------------------------------------------

@pytest.fixture
def plateau_setup():
    (x_train, y_train), (x_test, y_test) = get_test_data(train_samples=10, test_samples=10,
                                                         input_shape=(3,), num_classes=2)
    model = Sequential([layers.Dense(5), layers.Dense(2)])
    model.compile(loss="mse", optimizer=fo.optimizers.Adam(0.1))
    return model, x_train, to_categorical(y_train), x_test, to_categorical(y_test)


def test_plateau_reduces_lr_with_model_fit(plateau_setup):
    model, x_train, y_train, x_test, y_test = plateau_setup
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=100)
    model.fit(x_train, y_train, validation_data=(x_test, y_test), callbacks=[reduce_lr], epochs=2)
    assert model.optimizer.learning_rate == pytest.approx(0.01, rel=1e-7)


def test_plateau_throws_when_optimizer_has_schedule(plateau_setup):
    model, x_train, y_train, x_test, y_test = plateau_setup
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=100)
    model.compile(loss="mse", optimizer=fo.optimizers.Adam(
        fo.optimizers.schedules.PolynomialDecay(initial_learning_rate=0.1, decay_steps=10)))
    with pytest.raises(TypeError, match="This optimizer was created with a `LearningRateSchedule`"):
        model.fit(x_train, y_train, validation_data=(x_test, y_test), callbacks=[reduce_lr], epochs=2)


def test_plateau_verbose_logging(plateau_setup, capsys):
    model, x_train, y_train, x_test, y_test = plateau_setup
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=100, verbose=1)
    model.fit(x_train, y_train, validation_data=(x_test, y_test), callbacks=[reduce_lr], epochs=2)
    expected_log = "ReduceLROnPlateau reducing learning rate to 0.01"
    assert expected_log in capsys.readouterr().out


def test_plateau_honors_min_lr(plateau_setup):
    model, x_train, y_train, x_test, y_test = plateau_setup
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=10,
                                            min_lr=0.005)
    model.fit(x_train, y_train, validation_data=(x_test, y_test), callbacks=[reduce_lr], epochs=4)
    assert model.optimizer.learning_rate == pytest.approx(0.005, rel=1e-7)


def test_plateau_cooldown(plateau_setup):
    model, x_train, y_train, x_test, y_test = plateau_setup
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=100,
                                            cooldown=2)
    model.fit(x_train, y_train, validation_data=(x_test, y_test), callbacks=[reduce_lr], epochs=4)
    # with a cooldown of 2 epochs the rate is reduced every other epoch: twice in 4 epochs
    np.testing.assert_allclose(model.optimizer.learning_rate, 0.001, rtol=1e-6, atol=1e-6)


def test_plateau_state_reset_across_fit_calls(plateau_setup):
    model = plateau_setup[0]
    reduce_lr = callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="loss", min_delta=0, cooldown=2)
    reduce_lr.set_model(model)
    reduce_lr.on_train_begin()
    reduce_lr.best = 0.5
    reduce_lr.wait = 3
    reduce_lr.cooldown_counter = 2
    reduce_lr.on_train_begin()
    assert reduce_lr.best is None
    assert reduce_lr.wait == 0
    assert reduce_lr.cooldown_counter == 0


# -- csv_logger_test.py ---------------------------------------------------------------------------

TRAIN_SAMPLES, TEST_SAMPLES, INPUT_DIM, BATCH_SIZE = 10, 10, 3, 4


def csv_data(output_dim=1):
    rng = np.random.default_rng(1337)
    return (rng.random((TRAIN_SAMPLES, INPUT_DIM)), rng.random((TRAIN_SAMPLES, output_dim)),
            rng.random((TEST_SAMPLES, INPUT_DIM)), rng.random((TEST_SAMPLES, output_dim)))


def csv_model():
    model = Sequential([layers.Dense(2, activation="relu"), layers.Dense(1)], seed=1337)
    model.compile(loss="mse", optimizer="sgd", metrics=["mse"])
    return model


def test_csv_logger(tmp_path):
    filepath = os.path.join(tmp_path, "log.tsv")
    sep = "\t"
    x_train, y_train, x_test, y_test = csv_data()

    # case 1, create new file with defined separator
    model = csv_model()
    cbks = [callbacks.CSVLogger(filepath, separator=sep)]
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test), callbacks=cbks,
              epochs=1, verbose=0)
    assert os.path.exists(filepath)
    with open(filepath) as csvfile:
        dialect = csv.Sniffer().sniff(csvfile.read())
    assert dialect.delimiter == sep

    # case 2, append data to existing file, skip header
    model = csv_model()
    cbks = [callbacks.CSVLogger(filepath, separator=sep, append=True)]
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test), callbacks=cbks,
              epochs=1, verbose=0)

    # case 3, reuse of CSVLogger object
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test), callbacks=cbks,
              epochs=2, verbose=0)

    with open(filepath) as csvfile:
        list_lines = csvfile.readlines()
        for line in list_lines:
            assert line.count(sep) == 4
        assert len(list_lines) == 5
        output = " ".join(list_lines)
        assert len(re.findall("epoch", output)) == 1
    os.remove(filepath)


@pytest.mark.skipif(not takes(Sequential.fit, "validation_freq"), reason="fit has no validation_freq yet")
def test_csv_logger_with_validation_freq(tmp_path):
    filepath = os.path.join(tmp_path, "log.tsv")
    sep = "\t"
    x_train, y_train, x_test, y_test = csv_data()
    model = csv_model()
    cbks = [callbacks.CSVLogger(filepath, separator=sep)]
    hist = model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test),
                     validation_freq=3, callbacks=cbks, epochs=5, verbose=0)
    assert os.path.exists(filepath)
    with open(filepath) as csvfile:
        rows = csv.DictReader(csvfile, delimiter=sep)
        for idx, row in enumerate(rows, 1):
            assert "val_loss" in row
            if idx == 3:
                assert row["val_loss"] == str(hist.history["val_loss"][0])
            else:
                assert row["val_loss"] == "NA"


def exploding_model(num_classes=2):
    """Keras' model whose loss is not finite at once: five relu layers with kernels of 1e5."""
    model = Sequential()
    initializer = fo.initializers.Constant(value=1e5)
    for _ in range(5):
        model.add(layers.Dense(2, activation="relu", kernel_initializer=initializer))
    model.add(layers.Dense(num_classes))
    model.compile(loss="mean_squared_error", optimizer="sgd")
    return model


def classes_data(num_classes=2):
    rng = np.random.default_rng(1337)
    x_train = rng.random((TRAIN_SAMPLES, INPUT_DIM))
    y_train = rng.choice(np.arange(num_classes), size=TRAIN_SAMPLES)
    x_test = rng.random((TEST_SAMPLES, INPUT_DIM))
    y_test = rng.choice(np.arange(num_classes), size=TEST_SAMPLES)
    return x_train, to_categorical(y_train, num_classes), x_test, to_categorical(y_test, num_classes)


def test_stop_training_csv(tmp_path):
    # CSVLogger with TerminateOnNaN does not write an invalid CSV
    csv_logfile = os.path.join(tmp_path, "csv_logger.csv")
    x_train, y_train, x_test, y_test = classes_data()
    model = exploding_model()
    history = model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test),
                        callbacks=[callbacks.TerminateOnNaN(), callbacks.CSVLogger(csv_logfile)], epochs=20)
    loss = history.history["loss"]
    assert len(loss) == 1
    assert np.isnan(loss[0]) or np.isinf(loss[0])
    with open(csv_logfile) as f:
        values = [x for x in csv.reader(f) if x]
    assert "nan" in values[-1], "NaN not logged in CSV Logger."


# -- lambda_callback_test.py ----------------------------------------------------------------------

def lambda_model(batch_size=4):
    model = Sequential([layers.Input(shape=(2,), batch_size=batch_size), layers.Dense(1)])
    model.compile(optimizer=fo.optimizers.SGD(), loss=fo.losses.MeanSquaredError())
    return model


def test_lambda_callback():
    batch_size = 4
    model = lambda_model(batch_size)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 2)), rng.standard_normal((16, 1))
    logs = []
    lambda_log_callback = callbacks.LambdaCallback(
        on_train_begin=lambda logs_: logs.append("on_train_begin"),
        on_epoch_begin=lambda epoch, logs_: logs.append("on_epoch_begin"),
        on_epoch_end=lambda epoch, logs_: logs.append("on_epoch_end"),
        on_train_end=lambda logs_: logs.append("on_train_end"))
    model.fit(x, y, batch_size=batch_size, validation_split=0.2, callbacks=[lambda_log_callback], epochs=5,
              verbose=0)
    for event in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"):
        assert event in logs


@BATCH_HOOKS
def test_lambda_callback_with_batches():
    batch_size = 4
    model = lambda_model(batch_size)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 2)), rng.standard_normal((16, 1))
    logs = []
    lambda_log_callback = callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs_: logs.append("on_train_batch_begin"),
        on_train_batch_end=lambda batch, logs_: logs.append("on_train_batch_end"))
    model.fit(x, y, batch_size=batch_size, validation_split=0.2, callbacks=[lambda_log_callback], epochs=5,
              verbose=0)
    assert "on_train_batch_begin" in logs
    assert "on_train_batch_end" in logs


@pytest.mark.skipif(not takes(Sequential.evaluate, "callbacks"), reason="evaluate takes no callbacks yet")
def test_lambda_callback_with_kwargs():
    batch_size = 4
    model = lambda_model(batch_size)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 2)), rng.standard_normal((16, 1))
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    logs = []
    lambda_log_callback = callbacks.LambdaCallback(
        on_test_begin=lambda logs_: logs.append("custom_on_test_begin_executed"))
    model.evaluate(x, y, batch_size=batch_size, callbacks=[lambda_log_callback], verbose=0)
    assert "custom_on_test_begin_executed" in logs


def test_lambda_callback_no_args():
    lambda_callback = callbacks.LambdaCallback()
    assert isinstance(lambda_callback, callbacks.LambdaCallback)


def test_lambda_callback_with_additional_kwargs():
    def custom_callback(logs):
        pass

    lambda_callback = callbacks.LambdaCallback(custom_method=custom_callback)
    assert hasattr(lambda_callback, "custom_method")


@pytest.mark.skipif(not takes(Sequential.predict, "callbacks"), reason="predict takes no callbacks yet")
def test_lambda_callback_during_prediction():
    batch_size = 4
    model = lambda_model(batch_size)
    x = np.random.default_rng(0).standard_normal((16, 2))
    logs = []
    lambda_callback = callbacks.LambdaCallback(on_predict_begin=lambda logs_: logs.append("on_predict_begin_executed"))
    model.predict(x, batch_size=batch_size, callbacks=[lambda_callback], verbose=0)
    assert "on_predict_begin_executed" in logs


# -- model_checkpoint_test.py ---------------------------------------------------------------------

NUM_CLASSES, NUM_HIDDEN, CKPT_BATCH = 3, 5, 5


def checkpoint_model():
    model = Sequential([layers.Dense(NUM_HIDDEN, activation="relu"), layers.Dense(NUM_CLASSES)])
    model.compile(loss="mse", optimizer="sgd", metrics=["mae"])
    return model


def checkpoint_data():
    (x_train, y_train), (x_test, y_test) = get_test_data(random_seed=42, train_samples=30, test_samples=30,
                                                         input_shape=(INPUT_DIM,), num_classes=NUM_CLASSES)
    return (x_train, to_categorical(y_train, NUM_CLASSES)), (x_test, to_categorical(y_test, NUM_CLASSES))


def test_model_checkpoint_options(tmp_path):
    model = checkpoint_model()
    # save to a subdir, to test that the directory is made
    filepath = os.path.join(tmp_path, "subdir", "checkpoint.npz")
    (x_train, y_train), (x_test, y_test) = checkpoint_data()

    def fit(cbks, epochs=1, batch_size=CKPT_BATCH, verbose=0):
        model.fit(x_train, y_train, batch_size=batch_size, validation_data=(x_test, y_test), callbacks=cbks,
                  epochs=epochs, verbose=verbose)

    # Case 1
    monitor, save_best_only, mode = "val_loss", False, "auto"
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, mode=mode)])
    assert os.path.exists(filepath)
    os.remove(filepath)

    # Case 2
    mode = "min"
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, mode=mode)])
    assert os.path.exists(filepath)
    os.remove(filepath)

    # Case 3 (val_acc in Keras)
    mode, monitor = "max", "val_mae"
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, mode=mode)])
    assert os.path.exists(filepath)
    os.remove(filepath)

    # Case 4
    save_best_only = True
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, mode=mode)])
    assert os.path.exists(filepath)
    os.remove(filepath)

    # Case 5: metric not available
    with pytest.warns(UserWarning):
        fit([callbacks.ModelCheckpoint(filepath, monitor="unknown", save_best_only=True, mode="min")])
    assert os.path.exists(filepath)

    # Case 6: an unknown mode (Keras warns; fastopt refuses)
    with pytest.raises(ValueError, match="mode"):
        callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, mode="unknown")

    # Case 9: valid and invalid save_freq
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}.weights.npz")
    with pytest.raises(ValueError, match="Unrecognized save_freq"):
        callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, save_weights_only=True,
                                  mode=mode, save_freq="invalid_save_freq")
    callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, save_weights_only=True,
                              mode=mode, save_freq="epoch")
    callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only, save_weights_only=True,
                              mode=mode, save_freq=3)

    # Case 11: initial_value_threshold (val_acc in Keras)
    mode, monitor, initial_value_threshold, save_best_only = "max", "val_mae", -0.01, True
    filepath = os.path.join(tmp_path, "checkpoint.npz")
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only,
                                   initial_value_threshold=initial_value_threshold, mode=mode)])
    assert os.path.exists(filepath)
    os.remove(filepath)

    # Case 12
    mode, monitor, initial_value_threshold, save_best_only = "auto", "val_loss", None, True
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only,
                                   initial_value_threshold=initial_value_threshold, mode=mode)])
    assert os.path.exists(filepath)
    os.remove(filepath)

    # Case 13: no save when the loss was lower before
    mode, monitor, initial_value_threshold, save_best_only = "min", "val_loss", 0, True
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only,
                                   initial_value_threshold=initial_value_threshold, mode=mode)])
    assert not os.path.exists(filepath)

    # Case 14: the same in auto mode
    mode = "auto"
    fit([callbacks.ModelCheckpoint(filepath, monitor=monitor, save_best_only=save_best_only,
                                   initial_value_threshold=initial_value_threshold, mode=mode)])
    assert not os.path.exists(filepath)


@BATCH_HOOKS
def test_model_checkpoint_integer_save_freq(tmp_path):
    model = checkpoint_model()
    (x_train, y_train), (x_test, y_test) = checkpoint_data()

    # Case 8a: an integer save_freq
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}.npz")
    cbks = [callbacks.ModelCheckpoint(filepath, monitor="val_mae", save_best_only=False, mode="max",
                                      save_freq=15)]
    assert not os.path.exists(filepath.format(epoch=3))
    model.fit(x_train, y_train, batch_size=6,  # 5 batches / epoch, so a save every 3 epochs
              validation_data=(x_test, y_test), callbacks=cbks, epochs=10, verbose=0)
    for epoch in range(1, 10):
        assert os.path.exists(filepath.format(epoch=epoch)) == (epoch in (3, 6, 9)), epoch

    # Case 10a: the batch in the filename
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}batch{batch:02d}.npz")
    cbks = [callbacks.ModelCheckpoint(filepath, monitor="val_mae", save_freq=1)]
    model.fit(x_train, y_train, batch_size=15, validation_data=(x_test, y_test), callbacks=cbks, epochs=5,
              verbose=1)
    for epoch in range(1, 6):
        for batch in (1, 2):
            assert os.path.exists(filepath.format(epoch=epoch, batch=batch))


@BATCH_HOOKS
@SAVE_WEIGHTS
def test_model_checkpoint_integer_save_freq_weights_only(tmp_path):
    model = checkpoint_model()
    (x_train, y_train), (x_test, y_test) = checkpoint_data()

    # Case 8b: an integer save_freq and save_weights_only
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}.weights.npz")
    cbks = [callbacks.ModelCheckpoint(filepath, monitor="val_mae", save_freq=15, save_weights_only=True)]
    model.fit(x_train, y_train, batch_size=6, validation_data=(x_test, y_test), callbacks=cbks, epochs=10,
              verbose=0)
    for epoch in range(1, 10):
        assert os.path.exists(filepath.format(epoch=epoch)) == (epoch in (3, 6, 9)), epoch

    # Case 10b: weights with the batch in the filename
    filepath = os.path.join(tmp_path, "checkpoint.epoch{epoch:02d}batch{batch:02d}.weights.npz")
    cbks = [callbacks.ModelCheckpoint(filepath, monitor="val_mae", save_freq=1, save_weights_only=True)]
    model.fit(x_train, y_train, batch_size=15, validation_data=(x_test, y_test), callbacks=cbks, epochs=5,
              verbose=1)
    for epoch in range(1, 6):
        for batch in (1, 2):
            assert os.path.exists(filepath.format(epoch=epoch, batch=batch))


def loading_model():
    # Keras builds a functional model Input -> Dense -> Dense; here the same layers in a Sequential
    model = Sequential([layers.Input(shape=(INPUT_DIM,), batch_size=5), layers.Dense(NUM_HIDDEN, activation="relu"),
                        layers.Dense(NUM_CLASSES)])
    model.compile(loss="mse", optimizer="sgd", metrics=["mae"])
    return model


def test_model_checkpoint_loading(tmp_path):
    (x_train, y_train), (x_test, y_test) = checkpoint_data()
    model = loading_model()
    filepath = os.path.join(tmp_path, "checkpoint.model.npz")
    cbks = [callbacks.ModelCheckpoint(filepath, monitor="val_loss", save_best_only=True, mode="auto")]
    model.fit(x_train, y_train, batch_size=CKPT_BATCH, validation_data=(x_test, y_test), callbacks=cbks,
              epochs=1, verbose=0)
    ref_weights = model.get_weights()
    assert os.path.exists(filepath)
    new_model = fo.load_model(filepath)
    new_weights = new_model.get_weights()
    assert len(ref_weights) == len(new_weights)
    for ref_w, w in zip(ref_weights, new_weights):
        np.testing.assert_allclose(w, ref_w, rtol=1e-6, atol=1e-6)


@SAVE_WEIGHTS
def test_model_checkpoint_loading_weights(tmp_path):
    (x_train, y_train), (x_test, y_test) = checkpoint_data()
    model = loading_model()
    filepath = os.path.join(tmp_path, "checkpoint.weights.npz")
    cbks = [callbacks.ModelCheckpoint(filepath, monitor="val_loss", save_best_only=True, save_weights_only=True,
                                      mode="auto")]
    model.fit(x_train, y_train, batch_size=CKPT_BATCH, validation_data=(x_test, y_test), callbacks=cbks,
              epochs=1, verbose=0)
    ref_weights = model.get_weights()
    assert os.path.exists(filepath)
    new_model = loading_model()
    new_model.load_weights(filepath)
    new_weights = new_model.get_weights()
    assert len(ref_weights) == len(new_weights)
    for ref_w, w in zip(ref_weights, new_weights):
        np.testing.assert_allclose(w, ref_w, rtol=1e-6, atol=1e-6)


# -- early_stopping_test.py and monitor_callback_test.py -----------------------------------------

def relu_model(metrics=("mse",), optimizer="sgd"):
    model = Sequential((layers.Dense(1, activation="relu"), layers.Dense(1, activation="relu")))
    model.compile(loss="mse", optimizer=optimizer, metrics=list(metrics))
    return model


MONITOR_CASES = [("max", "val_mse", "max"), ("min", "val_loss", "min"), ("auto", "val_mse", "min"),
                 ("auto", "loss", "min"), ("auto", "acc", "max"), ("auto", "val_accuracy", "max"),
                 ("auto", "hinge", "min"), ("auto", "f1_score", "max")]


def test_early_stopping():
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((10, 5)), rng.random((10, 1))
    x_test, y_test = rng.random((10, 5)), rng.random((10, 1))
    model = relu_model(metrics=["mse", "mae"], optimizer="adam")
    for mode, monitor, expected_mode in MONITOR_CASES:
        cbks = [callbacks.EarlyStopping(patience=0, monitor=monitor, mode=mode)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # acc, hinge, f1_score are not in fastopt's logs
            model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test), callbacks=cbks, epochs=2,
                      verbose=0)
        monitor_op = np.greater if expected_mode == "max" else np.less
        assert cbks[0].monitor_op == monitor_op

    with pytest.raises(ValueError):
        cbks = [callbacks.EarlyStopping(patience=0, monitor="unknown")]
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test), callbacks=cbks, epochs=2,
                  verbose=0)


def test_early_stopping_patience():
    cases = [0, 1, 2, 3]
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    for patience in cases:
        stopper = callbacks.EarlyStopping(monitor="loss", patience=patience)
        stopper.set_model(Sequential())
        stopper.model.compile(loss="mse", optimizer="sgd")
        stopper.on_train_begin()
        for epoch, loss in enumerate(losses):
            stopper.on_epoch_end(epoch=epoch, logs={"loss": loss})
            if stopper.model.stop_training:
                break
        assert stopper.stopped_epoch == max(patience, 1) + 2


def test_early_stopping_reuse():
    patience = 3
    data = np.random.default_rng(0).random((100, 1))
    labels = np.where(data > 0.5, 1, 0)
    model = relu_model()
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience)
    history1 = model.fit(data, labels, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history1.epoch) >= patience
    history2 = model.fit(data, labels, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history2.epoch) >= patience


def test_early_stopping_state_reset_across_fit_calls():
    stopper = callbacks.EarlyStopping(monitor="loss", patience=3)
    stopper.set_model(Sequential())
    stopper.on_train_begin()
    stopper.best = 0.1
    stopper.wait = 3
    stopper.stopped_epoch = 5
    stopper.best_epoch = 5
    stopper.best_weights = object()
    stopper.on_train_begin()
    assert stopper.best is None
    assert stopper.wait == 0
    assert stopper.stopped_epoch == 0
    assert stopper.best_epoch == 0
    assert stopper.best_weights is None


def test_early_stopping_with_baseline():
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((10, 5)), rng.random((10, 1))
    model = relu_model()
    patience = 3
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience, baseline=0.6)
    hist = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(hist.epoch) >= patience


class DummyModel:
    def __init__(self):
        self.stop_training = False
        self.weights = -1

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights

    def set_weight_to_epoch(self, epoch):
        self.weights = epoch


def run_dummy(early_stop, losses, stop_at=None):
    early_stop.set_model(DummyModel())
    epochs_trained = 0
    early_stop.on_train_begin()
    for epoch in range(len(losses)):
        epochs_trained += 1
        early_stop.model.set_weight_to_epoch(epoch=epoch)
        early_stop.on_epoch_end(epoch, logs={"val_loss": losses[epoch]})
        if epoch == stop_at:
            early_stop.model.stop_training = True
        if early_stop.model.stop_training:
            break
    early_stop.on_train_end()
    return epochs_trained


def test_early_stopping_final_weights_when_restoring_model_weights():
    early_stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    run_dummy(early_stop, [0.2, 0.15, 0.1, 0.11, 0.12])
    # the best is epoch 2 (loss 0.1); patience 2 with restoring: back to epoch 2
    assert early_stop.model.get_weights() == 2

    # no epoch beats the baseline
    early_stop = callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    epochs_trained = run_dummy(early_stop, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73])
    # no epoch improves on the baseline: 5 epochs, then the best of them (the second model)
    assert epochs_trained == 5
    assert early_stop.model.get_weights() == 2

    # another callback asks for the stop
    early_stop = callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    epochs_trained = run_dummy(early_stop, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], stop_at=3)
    assert epochs_trained == 4
    assert early_stop.model.get_weights() == 2


def test_early_stopping_with_start_from_epoch():
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((10, 5)), rng.random((10, 1))
    model = relu_model()
    start_from_epoch, patience = 2, 3
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience, start_from_epoch=start_from_epoch)
    history = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history.epoch) >= patience + start_from_epoch

    start_from_epoch, patience = 2, 0
    stopper = callbacks.EarlyStopping(monitor="mse", patience=patience, start_from_epoch=start_from_epoch)
    history = model.fit(x_train, y_train, callbacks=[stopper], verbose=0, epochs=20)
    assert len(history.epoch) >= start_from_epoch


def test_monitor_op_logic():
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((10, 5)), rng.random((10, 1))
    x_test, y_test = rng.random((10, 5)), rng.random((10, 1))
    model = relu_model(metrics=["mse", "mae"], optimizer="adam")
    for mode, monitor, expected_mode in MONITOR_CASES:
        monitor_callback = callbacks.MonitorCallback(monitor, mode)
        monitor_callback.set_model(model)
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test), epochs=2, verbose=0)
        monitor_callback._set_monitor_op()
        monitor_op = np.greater if expected_mode == "max" else np.less
        assert monitor_callback.monitor_op == monitor_op

    with pytest.raises(ValueError):
        monitor_callback = callbacks.MonitorCallback("unknown")
        monitor_callback.set_model(model)
        model.fit(x_train, y_train, batch_size=5, validation_data=(x_test, y_test), epochs=2, verbose=0)
        monitor_callback._set_monitor_op()


def test_min_delta():
    monitor_callback = callbacks.MonitorCallback(mode="max", min_delta=0.5)
    monitor_callback._set_monitor_op()
    assert monitor_callback._is_improvement(0.75, 0)
    assert monitor_callback._is_improvement(0.5, None)
    assert not monitor_callback._is_improvement(0.5, 0)
    assert not monitor_callback._is_improvement(0.2, 0.5)


# -- terminate_on_nan_test.py ---------------------------------------------------------------------

def test_terminate_on_nan():
    x_train, y_train, x_test, y_test = classes_data()
    model = exploding_model()
    history = model.fit(x_train, y_train, batch_size=BATCH_SIZE, validation_data=(x_test, y_test),
                        callbacks=[callbacks.TerminateOnNaN()], epochs=20)
    loss = history.history["loss"]
    assert len(loss) == 1
    assert np.isnan(loss[0]) or np.isinf(loss[0])


def one_unit_model():
    model = Sequential([layers.Dense(1, input_shape=(1,))], dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    return model


HUGE = np.array([[1e200], [1e200]])  # for Keras' [[inf], [inf]]: finite, its square is not


def test_terminate_on_nan_graceful_stop():
    model = one_unit_model()
    x = np.array([[1.0], [2.0]])
    callback = callbacks.TerminateOnNaN(raise_error=False)
    history = model.fit(x, HUGE, epochs=2, batch_size=1, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) < 4


def test_terminate_on_nan_raise_error_raises_error():
    model = one_unit_model()
    x = np.array([[1.0], [2.0]])
    callback = callbacks.TerminateOnNaN(raise_error=True)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered"):
        model.fit(x, HUGE, epochs=1, batch_size=1, callbacks=[callback], verbose=0)


def test_raise_error_terminate_does_not_trigger_on_train_end():
    class TrackingCallback(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train_end_called = False

        def on_train_end(self, logs=None):
            self.train_end_called = True

    model = one_unit_model()
    tracking_callback = TrackingCallback()
    with pytest.raises(RuntimeError):
        model.fit(np.array([[1.0]]), HUGE[:1], epochs=1,
                  callbacks=[tracking_callback, callbacks.TerminateOnNaN(raise_error=True)], verbose=0)
    assert not tracking_callback.train_end_called


@pytest.mark.parametrize("raise_error", [False, True])
def test_normal_training_does_not_raise(raise_error):
    model = one_unit_model()
    x = np.array([[1.0], [2.0]])
    y = np.array([[1.0], [2.0]])
    history = model.fit(x, y, epochs=2, callbacks=[callbacks.TerminateOnNaN(raise_error=raise_error)], verbose=0)
    assert len(history.history["loss"]) == 2


# -- callback_test.py -----------------------------------------------------------------------------

@BATCH_HOOKS
def test_model_state_is_current_on_batch_end():
    seen = []

    class CBK(callbacks.Callback):
        def on_batch_end(self, batch, logs):
            seen.append((self.model.optimizer.iterations, batch + 1))

    model = Sequential([layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.random((8, 1)), rng.random((8, 1)), callbacks=[CBK()], batch_size=2, verbose=0)
    assert seen and all(iterations == expected for iterations, expected in seen)
