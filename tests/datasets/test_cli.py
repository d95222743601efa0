"""``skysieve synth``: each subcommand runs, prints its summary, and refuses bad arguments with a message."""

from __future__ import annotations

import json

import cv2
import pytest

from skysieve.cli import main


def test_synth_world_flight_dataset(tmp_path, capsys):
    assert main(["synth", "world", str(tmp_path / "w"), "--seed", "2", "--size-m", "60", "--gsd", "0.1",
                 "--preview", str(tmp_path / "w.png"), "--json"]) == 0
    assert (tmp_path / "w.png").stat().st_size > 1000
    world = json.loads(capsys.readouterr().out)
    assert world["crs"] == "EPSG:4547" and (tmp_path / "w" / "ortho.tif").is_file()
    assert main(["synth", "flight", str(tmp_path / "w"), str(tmp_path / "f"), "--altitude", "30", "--scale", "0.06",
                 "--area", "20,20,40,40", "--gps-noise", "0"]) == 0
    assert "images" in capsys.readouterr().out
    assert len(list((tmp_path / "f" / "images").glob("DJI_*.JPG"))) >= 2
    assert main(["synth", "dataset", str(tmp_path / "d"), "--n", "2", "--imgsz", "96", "--workers", "1",
                 "--sheet", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "d" / "data.yaml").is_file() and (tmp_path / "sheet.png").stat().st_size > 1000
    # --model-gsd: tiles rendered at 8-10 cm/px come out at the requested size, resampled to 4 cm/px
    assert main(["synth", "dataset", str(tmp_path / "m"), "--n", "2", "--imgsz", "96", "--workers", "1",
                 "--gsd-range", "0.08,0.10", "--model-gsd", "0.04"]) == 0
    tiles = sorted((tmp_path / "m" / "images").rglob("*.jpg"))
    assert len(tiles) == 2 and all(cv2.imread(str(t)).shape == (96, 96, 3) for t in tiles)
    assert main(["synth", "dataset", str(tmp_path / "m2"), "--n", "2", "--model-gsd", "9"]) == 1
    assert "model GSD" in capsys.readouterr().err


def test_synth_errors_are_messages(tmp_path, capsys):
    assert main(["synth", "flight", str(tmp_path), str(tmp_path / "f")]) == 1
    assert "no synthetic world" in capsys.readouterr().err
    assert main(["synth", "world", str(tmp_path / "w"), "--size-m", "1"]) == 1
    assert "out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "dataset", str(tmp_path / "d"), "--n", "3", "--gsd-range", "fast"])


def test_synth_into_an_existing_output_is_refused_unless_replaced(tmp_path, capsys):
    """A second dataset of 3 tiles over a finished one of 8 left 8 tiles, one in both splits. Now refused,
    or --replace starts afresh; an interrupted run (no data.yaml yet) still resumes; a dataset skysieve
    did not write is never deleted; a file is refused."""
    d = tmp_path / "d"
    args = ["synth", "dataset", str(d), "--imgsz", "64", "--workers", "1"]
    assert main([*args, "--n", "4"]) == 0
    capsys.readouterr()
    assert main([*args, "--n", "2"]) == 2
    assert "already holds a finished output (data.yaml)" in capsys.readouterr().err
    assert main([*args, "--n", "2", "--replace"]) == 0
    assert len(list((d / "images").rglob("*.jpg"))) == 2
    (d / "data.yaml").unlink()  # as if killed before the end: the rerun resumes, no --replace needed
    assert main([*args, "--n", "2"]) == 0 and (d / "data.yaml").is_file()
    (tmp_path / "afile").write_text("x")
    assert main(["synth", "world", str(tmp_path / "afile"), "--size-m", "60"]) == 2
    assert "is a file" in capsys.readouterr().err
    mine = tmp_path / "mine"
    (mine / "images" / "train").mkdir(parents=True)
    (mine / "images" / "train" / "hand_labelled.jpg").write_bytes(b"x")
    (mine / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: {0: tank}\n")
    assert main([*args[:2], str(mine), "--n", "2", "--replace"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (mine / "images" / "train" / "hand_labelled.jpg").exists()
