"""The data loaders: right sizes, fixed splits, and clear errors on missing or altered files."""

import shutil

import pytest

from utils import data


def test_every_file_is_intact():
    assert [row[2] for row in data.verify_all()] == ["ok"] * len(data.FILES)


def test_loaders_return_ready_objects():
    assert len(data.load_shakespeare()) == 1_115_394
    assert len(data.load_analects()) == 22_093
    sst2 = data.load_sst2()
    assert (len(sst2.train), len(sst2.val), len(sst2.test)) == (6_920, 872, 1_821)
    assert sst2.train[0][1] in (0, 1) and isinstance(sst2.train[0][0], str)
    pairs = data.load_cmn_eng()
    assert sum(map(len, pairs)) == 20_133


def test_sms_splits_are_seeded_stratified_and_disjoint():
    a, b = data.load_sms_spam(seed=0), data.load_sms_spam(seed=0)
    assert a == b
    assert data.load_sms_spam(seed=1).train != a.train
    assert sum(map(len, a)) == 5_574
    share = [sum(label for _, label in part) / len(part) for part in a]
    assert max(share) - min(share) < 0.01  # every split keeps ~13.4% spam
    assert abs(share[0] - 747 / 5574) < 0.01


def test_sms_balanced_protocol():
    splits = data.load_sms_spam(balanced=True)
    everything = splits.train + splits.val + splits.test
    assert len(everything) == 2 * 747
    assert sum(label for _, label in everything) == 747
    assert len(splits.train) == pytest.approx(0.7 * 1494, abs=2)


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of data/ that a test may damage; $LLM_COURSE_DATA points the loaders at it."""
    copy = tmp_path / "data"
    shutil.copytree(data.data_dir(), copy)
    monkeypatch.setenv(data.DATA_ENV, str(copy))
    return copy


def test_one_altered_byte_is_caught_with_a_clear_message(data_copy):
    path = data_copy / "sms_spam" / "SMSSpamCollection"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01  # flip one bit of one byte
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataFileError) as info:
        data.load_sms_spam()
    message = str(info.value)
    assert "SMSSpamCollection" in message
    assert data.FILES["sms_spam/SMSSpamCollection"][0] in message  # the expected hash
    assert data.sha256_of(path) in message  # the hash found
    assert "git checkout -- data/sms_spam/SMSSpamCollection" in message  # how to restore it
    status = dict((name, s) for name, _, s in data.verify_all())
    assert status["sms_spam/SMSSpamCollection"].startswith("ALTERED")


def test_missing_file_says_how_to_restore(data_copy):
    (data_copy / "tinyshakespeare" / "input.txt").unlink()
    with pytest.raises(data.DataFileError, match=r"missing.*git checkout -- data/tinyshakespeare/input.txt"):
        data.load_shakespeare()


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        data.split(list(range(10)), fractions=(0.5, 0.5, 0.5))
