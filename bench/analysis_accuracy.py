"""Print the accuracy and timing tables of docs/MUSIC_ANALYSIS.md.

Run: ``.venv/bin/python -m bench.analysis_accuracy [CORPUS_AUDIO_DIR]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from choreo_cli.demo.song_synth import STYLES, synthesize_song
from choreography.music.analysis import analyse_file, analyse_samples
from choreography.music.scoring import beat_f_measure, beats_at_alternative, downbeat_phase_correct

TEMPI = (72.0, 90.0, 110.0, 128.0, 150.0)
STRUCTURE = (("intro", 4), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4))


def synthetic_table() -> None:
    """One row per synthesized song: tempo error, octave flag, beat F, bar phase, chorus repeat."""
    print(
        "| style | true BPM | est. BPM | error | octave flag | beat F | bar phase | chorus repeat |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for style in STYLES:
        for bpm in TEMPI:
            song = synthesize_song(bpm, style, STRUCTURE, seed=int(bpm))
            a = analyse_samples(song.y, song.sr)
            err = a.tempo_bpm / bpm - 1
            kind = next(
                (x.kind for x in a.tempo_alternatives if abs(x.bpm / bpm - 1) <= 0.02), None
            )
            on_tempo = abs(err) <= 0.02
            beats = a.beats_s if on_tempo or kind is None else beats_at_alternative(a, kind)
            f = beat_f_measure(song.beats_s.tolist(), beats)
            phase = downbeat_phase_correct(a, song.downbeats_s.tolist()) if on_tempo else None
            choruses = [s for s in song.sections if s.name == "chorus"]
            mids = [(c.start_s + c.end_s) / 2 for c in choruses]
            found = [next(s for s in a.sections if s.start_s <= m < s.end_s) for m in mids]
            repeat = found[1].index != found[0].index and found[1].repeat_of == found[0].index
            flag = "yes" if a.octave_ambiguous else "no"
            print(
                f"| {style} | {bpm:.0f} | {a.tempo_bpm:.2f} | {100 * err:+.2f} % "
                f"| {flag}{f' ({kind})' if kind and not on_tempo else ''} | {f:.3f} "
                f"| {'-' if phase is None else ('right' if phase else 'wrong')} "
                f"| {'yes' if repeat else 'no'} |"
            )


def corpus_table(audio_dir: Path) -> None:
    """One row per corpus song: tempo, flag, beats, phrases, section labels, wall time."""
    analyse_file(sorted(audio_dir.glob("*.ogg"))[0])  # warm-up: librosa import and numba JIT
    print("| song | duration | BPM | octave flag | beats | phrases | sections | wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted(audio_dir.glob("*.ogg")):
        start = time.perf_counter()
        a = analyse_file(path)
        took = time.perf_counter() - start
        labels = " ".join(s.label for s in a.sections)
        print(
            f"| {path.name} | {a.duration_s:.1f} s | {a.tempo_bpm:.1f} "
            f"| {'yes' if a.octave_ambiguous else 'no'} | {len(a.beats_s)} | {len(a.phrases)} "
            f"| {labels} | {took:.2f} s |"
        )


if __name__ == "__main__":
    synthetic_table()
    default = Path(__file__).resolve().parents[2] / "shared/corpus/librosa-data/audio"
    audio = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if not any(audio.glob("*.ogg")):
        sys.exit(f"no .ogg songs in {audio}: give the corpus's audio folder as the argument")
    corpus_table(audio)
