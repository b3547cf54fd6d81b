from pathlib import Path

import pytest

from lightning_divrec.config import ConfigError, load_evaluate_config, load_train_config


def test_defaults_compose_groups():
    cfg = load_train_config([])
    assert cfg.data.name == "ml-100k"
    assert cfg.model.name == "graphsage"
    assert cfg.trainer.accelerator == "cpu"
    assert cfg.logger.wandb.mode == "offline"


def test_group_choice_selects_file():
    cfg = load_train_config(["model=popularity", "logger=csv"])
    assert cfg.model.name == "popularity"
    assert cfg.logger.wandb.enabled is False


def test_model_keys_are_checked_against_the_chosen_model():
    cfg = load_train_config(["model=popularity"])
    assert "embedding_dim" not in cfg.model
    with pytest.raises(ConfigError) as caught:
        load_train_config(["model=popularity", "model.embedding_dim=8"])
    assert "unknown key 'model.embedding_dim'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_train_config(["model.name=graphsag"])
    assert "'model.name' has invalid value 'graphsag'" in str(caught.value)
    assert "did you mean 'graphsage'" in str(caught.value)


def test_dotted_override_is_typed():
    cfg = load_train_config(["trainer.max_epochs=5", "model.lr=0.01", "data.path=null"])
    assert cfg.trainer.max_epochs == 5
    assert cfg.model.lr == 0.01
    assert cfg.data.path is None


def test_every_problem_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        load_train_config(["data.bath_size=3", "trainer.max_epochs=many", "model.aggr=median", "nonsense=1"])
    problems = caught.value.problems
    assert len(problems) == 4
    message = str(caught.value)
    assert "'data.bath_size'" in message
    assert "did you mean 'data.batch_size'" in message
    assert "'trainer.max_epochs' must be an integer" in message
    assert "'model.aggr' has invalid value 'median'" in message
    assert "'nonsense'" in message


def test_unknown_group_choice_lists_choices():
    with pytest.raises(ConfigError) as caught:
        load_train_config(["model=transformerx"])
    assert "model=transformerx" in str(caught.value)
    assert "graphsage" in str(caught.value)


def test_malformed_override_rejected():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_train_config(["trainer.max_epochs"])


def test_integer_accepted_for_float():
    cfg = load_train_config(["model.weight_decay=0"])
    assert cfg.model.weight_decay == 0


def test_bool_rejected_for_integer():
    with pytest.raises(ConfigError, match="'trainer.devices' must be an integer"):
        load_train_config(["trainer.devices=true"])


def test_evaluate_config_rejects_unknown_key():
    with pytest.raises(ConfigError, match="'ckpt'"):
        load_evaluate_config(["ckpt=foo.ckpt"])


def test_missing_config_dir_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="train.yaml"):
        load_train_config([], config_dir=tmp_path)


def test_group_and_key_errors_together():
    with pytest.raises(ConfigError) as caught:
        load_train_config(["model=sasrec", "trainer.max_epoch=3", "data.batch_size=big"])
    message = str(caught.value)
    assert len(caught.value.problems) == 3
    assert "model=sasrec" in message
    assert "'trainer.max_epoch'" in message
    assert "'data.batch_size' must be an integer" in message


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("group", ["model", "data", "trainer", "logger"])
def test_every_shipped_group_file_validates(group):
    """Each YAML file under configs/<group>/ composes and passes the schema."""
    from lightning_divrec.config import TrainConfig, validate_config

    names = sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))
    assert names, f"no files in configs/{group}"
    for name in names:
        cfg = validate_config(load_train_config([f"{group}={name}"]), TrainConfig)
        assert cfg[group] is not None, name
