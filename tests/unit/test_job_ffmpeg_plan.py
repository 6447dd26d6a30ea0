"""The FFmpeg argument builder and the timeline it works from: pure functions, golden outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from job.ffmpeg_plan import (
    BodyOutput,
    EncodeSettings,
    UnsafePath,
    audio_args,
    clip_run_args,
    file_input,
    mux_args,
    piece_key,
    prepare_args,
    prepared_key,
    stretch_args,
)
from job.ffmpeg_run import parse_progress_line
from job.timeline import ClipFile, Piece, SourceSpan, plan_timeline
from schemas.blueprint import parse_blueprint
from tests.fixtures.blueprints import MovePlan, build_blueprint

SETTINGS = EncodeSettings(640, 360, 24, "veryfast", 21)
CLIP = ClipFile(Path("/work/in/a.mp4"), "a" * 64, demuxer="mov")
SOURCE = ClipFile(Path("/in/a.mp4"), "a" * 64, demuxer="mov")
SONG = ClipFile(Path("/s.m4a"), "5" * 64, demuxer="mov")


def _timeline(moves: list[MovePlan], **options: object) -> object:
    blueprint = parse_blueprint(build_blueprint(moves, **options))  # type: ignore[arg-type]
    clips = {
        move.clip_uri: ClipFile(Path(f"/in/{move.clip_uri}"), "0" * 64, demuxer="mov")
        for move in moves
    }
    return blueprint, plan_timeline(blueprint, clips)


def _segment(speed: float = 1.0, mirror: bool = False, start: float = 1.5) -> Piece:
    return Piece("segment", 0, 0, 48, (SourceSpan(CLIP, start, speed, mirror),))


def test_segment_arguments_match_the_golden_list() -> None:
    """A plain segment renders with exactly these arguments: file-only input, exact frames."""
    args = stretch_args([_segment()], SETTINGS, Path("/p.h264"), font=None, text_dir=Path("/t"))
    assert args == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-ss", "1.500000", "-protocol_whitelist", "file", "-format_whitelist", "mov",
        "-f", "mov", "-i", "file:/work/in/a.mp4",
        "-filter_complex",
        "[0:v]setpts=(PTS)/1.000000,fps=24:start_time=0,setsar=1,"
        "tpad=stop=-1:stop_mode=clone,setpts=N/24/TB[m0u0];"
        "[m0u0]trim=start_frame=0:end_frame=48,setpts=PTS-STARTPTS[m0t0];[m0t0]setpts=N/24/TB[v]",
        "-map", "[v]", "-frames:v", "48", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-c:v", "libx264", "-threads", "0", "-preset", "veryfast", "-crf", "21", "-bf", "0",
        "-g", "24",
        "-keyint_min", "24", "-sc_threshold", "0",
        "-x264-params", "repeat-headers=1:me=dia:rc-lookahead=5",
        "-pix_fmt", "yuv420p", "-r", "24", "-f", "h264",
        "-progress", "pipe:1", "-nostats", "/p.h264",
    ]  # fmt: skip


def test_speed_becomes_setpts_and_mirror_becomes_hflip() -> None:
    """Speed 1.1 divides timestamps by 1.1; hflip appears only for a mirrored move."""
    mirrored = " ".join(stretch_args([_segment(1.1, True)], SETTINGS, Path("/o.mp4"), font=None,
                                   text_dir=Path("/t")))  # fmt: skip
    plain = " ".join(stretch_args([_segment(0.9)], SETTINGS, Path("/o.mp4"), font=None,
                                text_dir=Path("/t")))  # fmt: skip
    assert "setpts=(PTS)/1.100000" in mirrored
    assert "hflip" in mirrored
    assert "setpts=(PTS)/0.900000" in plain
    assert "hflip" not in plain


def test_blueprint_speed_factor_reaches_the_segment() -> None:
    """A move at speed 1.1 with mirror on becomes a mirrored span at that speed."""
    moves = [MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4", counts=4, speed=1.1, mirror=True)]
    _, timeline = _timeline(moves)
    second = timeline.pieces[1].sources[0]  # type: ignore[attr-defined]
    assert second.speed == pytest.approx(1.1, abs=1e-3)
    assert second.mirror is True


def test_transition_windows_are_centred_on_cuts_and_pieces_chain_without_gaps() -> None:
    """Each piece starts where the previous ended, crossfades sit astride their cut, total kept."""
    moves = [
        MovePlan("moves/a.mp4", counts=4),
        MovePlan("moves/b.mp4", counts=4, transition="crossfade", transition_s=0.5),
        MovePlan("moves/c.mp4", counts=2, transition="wipeleft", transition_s=0.25),
        MovePlan("moves/d.mp4", counts=4),
    ]
    blueprint, timeline = _timeline(moves)
    pieces = timeline.pieces  # type: ignore[attr-defined]
    position = 0
    for piece in pieces:
        assert piece.start_frame == position
        position += piece.frames
    assert position == timeline.frames == round(blueprint.song.window.length_s * 24)  # type: ignore[attr-defined]
    fades = [piece for piece in pieces if piece.kind == "transition"]
    assert [(p.xfade, p.frames) for p in fades] == [("fade", 12), ("wipeleft", 6)]
    cut_b, cut_c = 48, 96  # 4 counts at 120 BPM = 2 s = 48 frames
    assert [p.start_frame + p.frames // 2 for p in fades] == [cut_b, cut_c]


def test_body_chunks_sit_on_the_moves_own_grid_whatever_its_neighbours() -> None:
    """A move's whole chunks sit on its one-second grid, so a new neighbour transition keeps them;
    the window is exactly the fade, and only the partial chunks beside it are new."""
    hard = [MovePlan("moves/a.mp4", counts=8), MovePlan("moves/b.mp4", counts=8)]
    soft = [hard[0], MovePlan("moves/b.mp4", counts=8, transition="crossfade", transition_s=0.5)]
    _, plain = _timeline(hard)
    _, faded = _timeline(soft)

    def chunks(timeline: object, move: int) -> list[tuple[int, int]]:
        pieces = timeline.pieces  # type: ignore[attr-defined]
        return [(p.start_frame, p.frames) for p in pieces if p.kind == "segment"
                and p.move_index == move]  # fmt: skip

    # 8 counts = 96 frames at 24 fps; the 12-frame crossfade takes [90, 102), leaving the
    # partial chunks [72, 90) of move a and [102, 120) of move b.
    assert chunks(plain, 0) == [(0, 24), (24, 24), (48, 24), (72, 24)]
    assert chunks(faded, 0) == [(0, 24), (24, 24), (48, 24), (72, 18)]
    assert chunks(faded, 1) == [(102, 18), (120, 24), (144, 24), (168, 24)]
    fade = next(p for p in faded.pieces if p.kind == "transition")  # type: ignore[attr-defined]
    assert (fade.start_frame, fade.frames) == (90, 12)
    keys = {piece_key(p, SETTINGS, None) for p in plain.pieces}  # type: ignore[attr-defined]
    reused = [p for p in faded.pieces if piece_key(p, SETTINGS, None) in keys]  # type: ignore[attr-defined]
    assert len(reused) == 6


def test_a_moves_chunks_render_in_one_run_split_at_keyframes() -> None:
    """Consecutive chunks become one FFmpeg run whose segment muxer cuts where keyframes are
    forced, at each chunk's first frame (a partial first chunk included)."""

    def chunk(start: int, frames: int) -> Piece:
        return Piece("segment", 0, start, frames, (SourceSpan(CLIP, 1.5 + start / 24, 1.0, False),))

    chunks = [chunk(0, 24), chunk(24, 24), chunk(48, 10)]
    args = stretch_args(chunks, SETTINGS, Path("/s/chunk-%04d.mp4"), font=None,
                        text_dir=Path("/t"))  # fmt: skip
    assert args[args.index("-frames:v") + 1] == "58"
    assert args[args.index("-segment_frames") + 1] == "24,48"
    assert args[args.index("-f", args.index("-filter_complex")) + 1] == "segment"
    assert args[args.index("-segment_format") + 1] == "h264"
    assert args.count("-f") == 2 and args.count("-i") == 1  # the input's demuxer, the muxer
    assert args[-1] == "/s/chunk-%04d.mp4"
    assert args[args.index("-force_key_frames") + 1] == "expr:eq(n,24)+eq(n,48)"
    graph = args[args.index("-filter_complex") + 1]
    assert "split=3[m0u0][m0u1][m0u2]" in graph
    assert "[m0u2]trim=start_frame=48:end_frame=58" in graph
    assert graph.endswith("[p0][p1][p2]concat=n=3:v=1:a=0[v]")
    partial = stretch_args([chunk(48, 10), chunk(58, 24)], SETTINGS, Path("/s/c-%04d.mp4"),
                           font=None, text_dir=Path("/t"))  # fmt: skip
    assert partial[partial.index("-force_key_frames") + 1] == "expr:eq(n,10)"


def test_a_stretch_decodes_each_move_once_across_its_windows() -> None:
    """Bodies of three moves and the crossfade between two of them: one input per move, the
    window fed by both moves' streams, one file per piece."""
    fade = MovePlan("moves/b.mp4", counts=4, transition="crossfade", transition_s=0.5)
    moves = [MovePlan("moves/a.mp4", counts=4), fade, MovePlan("moves/c.mp4", counts=4)]
    _, timeline = _timeline(moves)
    pieces = timeline.pieces  # type: ignore[attr-defined]
    assert [p.kind for p in pieces].count("transition") == 1
    args = stretch_args(pieces, SETTINGS, Path("/s/p-%04d.h264"), font=None, text_dir=Path("/t"))
    assert args.count("-i") == 3
    graph = args[args.index("-filter_complex") + 1]
    window = next(i for i, p in enumerate(pieces) if p.kind == "transition")
    assert f"xfade=transition=fade:duration=0.500000:offset=0[x{window}]" in graph
    assert f"concat=n={len(pieces)}:v=1:a=0[v]" in graph
    # Every piece is numbered afresh before the concat: a window's xfade re-times frames once its
    # first input ends, and a repeated timestamp made the constant-rate output drop a frame
    # (seen in the render benchmark: a 16-frame window came out with 15).
    labels = tuple(f"[p{n}]" for n in range(len(pieces)))
    ends = [chain for chain in graph.split(";") if chain.endswith(labels)]
    assert len(ends) == len(pieces) and all("setpts=N/24/TB" in chain for chain in ends)
    starts = [str(p.start_frame - pieces[0].start_frame) for p in pieces[1:]]
    assert args[args.index("-segment_frames") + 1] == ",".join(starts)
    with pytest.raises(ValueError, match="timeline order"):
        stretch_args([pieces[2], pieces[0]], SETTINGS, Path("/s/p-%04d.h264"), font=None,
                     text_dir=Path("/t"))  # fmt: skip
    gap = stretch_args([pieces[0], pieces[2]], SETTINGS, Path("/s/p-%04d.h264"), font=None,
                       text_dir=Path("/t"))  # fmt: skip
    assert f"trim=start_frame={pieces[2].start_frame}:" in gap[gap.index("-filter_complex") + 1]
    jumped = Piece("segment", 0, 48, 24, (SourceSpan(CLIP, 9.0, 1.0, False),))
    with pytest.raises(ValueError, match="does not continue"):
        stretch_args([_segment(), jumped], SETTINGS, Path("/s/p-%04d.h264"), font=None,
                     text_dir=Path("/t"))  # fmt: skip


def test_xfade_runs_over_the_whole_window_from_offset_zero() -> None:
    """The crossfade filter lasts exactly the window and starts at its first frame."""
    moves = [MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4", transition="crossfade",
                                                transition_s=0.5)]  # fmt: skip
    _, timeline = _timeline(moves)
    window = next(p for p in timeline.pieces if p.kind == "transition")  # type: ignore[attr-defined]
    graph = stretch_args([window], SETTINGS, Path("/o.mp4"), font=None, text_dir=Path("/t"))
    assert "[m0t0][m1t0]xfade=transition=fade:duration=0.500000:offset=0[x0]" in graph[
        graph.index("-filter_complex") + 1]  # fmt: skip


def test_incoming_clip_without_footage_before_its_in_point_holds_its_first_frame() -> None:
    """A transition into a clip used from 0 s clones its first frame for the early half."""
    moves = [MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4", transition="crossfade",
                                                transition_s=0.5, clip_in_s=0.0)]  # fmt: skip
    _, timeline = _timeline(moves)
    window = next(p for p in timeline.pieces if p.kind == "transition")  # type: ignore[attr-defined]
    graph = " ".join(
        stretch_args([window], SETTINGS, Path("/o.mp4"), font=None, text_dir=Path("/t"))
    )
    assert "tpad=start=6:start_mode=clone" in graph


def test_piece_key_ignores_position_but_not_content() -> None:
    """The same span elsewhere on the timeline reuses the cache; mirroring it does not."""
    moved = Piece("segment", 5, 480, 48, _segment().sources)
    assert piece_key(_segment(), SETTINGS, None) == piece_key(moved, SETTINGS, None)
    assert piece_key(_segment(), SETTINGS, None) != piece_key(_segment(mirror=True), SETTINGS, None)


@pytest.mark.parametrize(
    "path", ["relative.mp4", "http://example.com/x.mp4", "/tmp/line\nfile 'http://x'", "/a\x00b"]
)
def test_inputs_other_than_absolute_local_files_are_refused(path: str) -> None:
    """Relative names, URLs and paths with line breaks or NUL never reach FFmpeg."""
    with pytest.raises(UnsafePath):
        file_input(Path(path))
    with pytest.raises(UnsafePath):
        mux_args(Path("/v.h264"), Path(path), 9.0, 24, Path("/v.mp4"))


def test_every_input_is_a_whitelisted_local_file() -> None:
    """Each -i is file:/... preceded by a file-only protocol whitelist and a forced demuxer."""
    commands = [
        stretch_args([_segment()], SETTINGS, Path("/o.mp4"), font=None, text_dir=Path("/t")),
        audio_args(SONG, Path("/a.m4a"), start_s=1, length_s=9, fade_in_s=1, fade_out_s=2),
        mux_args(Path("/v.h264"), Path("/a.m4a"), 9.0, 24, Path("/v.mp4")),
        prepare_args(SOURCE, SETTINGS, Path("/c/a.mp4"), source_fps=25),
    ]
    for args in commands:
        inputs = [i for i, arg in enumerate(args) if arg == "-i"]
        assert inputs
        for at in inputs:
            assert args[at + 1].startswith("file:/")
            assert args[at - 2] == "-f"
            assert args[at - 1] in {"mov", "h264"}
            whitelist = args[args.index("-protocol_whitelist", at - 8) + 1]
            assert whitelist == "file"


def test_a_clip_without_a_probed_demuxer_is_refused() -> None:
    """FFmpeg never guesses the format of a file the job has not probed."""
    unprobed = ClipFile(Path("/in/a.m3u8"), "a" * 64)
    with pytest.raises(UnsafePath, match="no demuxer"):
        prepare_args(unprobed, SETTINGS, Path("/c/a.mp4"), source_fps=25)
    with pytest.raises(UnsafePath, match="no demuxer"):
        audio_args(unprobed, Path("/a.m4a"), start_s=1, length_s=9, fade_in_s=1, fade_out_s=2)


def test_audio_is_cut_to_the_window_and_faded() -> None:
    """The song's window starts at -ss, lasts -t, fades in at 0 and out before the end."""
    args = audio_args(SONG, Path("/a.m4a"), start_s=12.5, length_s=30.0, fade_in_s=0.5,
                      fade_out_s=2.0)  # fmt: skip
    assert args[args.index("-ss") + 1] == "12.500000"
    assert args[args.index("-t") + 1] == "30.000000"
    assert args[args.index("-af") + 1] == (
        "apad,afade=t=in:st=0:d=0.500000,afade=t=out:st=28.000000:d=2.000000"
    )


def test_mux_copies_streams_and_puts_the_index_first() -> None:
    """The mux is a stream copy of the raw H.264 join, timed at the output rate, +faststart."""
    args = mux_args(Path("/v.h264"), Path("/a.m4a"), 9.0, 24, Path("/v.mp4"))
    assert args[args.index("-c") + 1] == "copy"
    assert args[args.index("-framerate") + 1] == "24"
    assert args[args.index("-framerate") + 6 : args.index("-framerate") + 8] == ["-f", "h264"]
    assert args[args.index("-t") + 1] == "9.000000"
    assert args[args.index("-movflags") + 1] == "+faststart"


def test_progress_lines_yield_frame_counts() -> None:
    """Only ``frame=N`` lines of -progress output count; other keys are ignored."""
    lines = ["frame=12\n", "fps=30.0\n", "out_time_us=500000\n", "frame=N/A\n", "progress=end\n"]
    assert [parse_progress_line(line) for line in lines] == [12, None, None, None, None]


def test_a_prepared_clip_is_letterboxed_with_dense_keyframes_at_its_own_rate() -> None:
    """Preparation scales and pads to the output frame, keeps the clip's timing, no audio."""
    args = prepare_args(SOURCE, SETTINGS, Path("/c/a.mp4"), source_fps=25)
    graph = args[args.index("-filter_complex") + 1]
    assert graph == (
        "[0:v]scale=640:360:force_original_aspect_ratio=decrease,"
        "pad=640:360:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,format=yuv420p[m]"
    )
    assert args[args.index("-fps_mode") + 1] == "vfr"
    assert args[args.index("-g") + 1] == "8"
    assert "-an" in args
    assert args[-1] == "/c/a.mp4"
    fast = prepare_args(SOURCE, SETTINGS, Path("/c/a.mp4"), source_fps=240)
    assert fast[fast.index("-filter_complex") + 1].startswith("[0:v]fps=60,scale=")


def test_prepared_key_depends_on_the_clip_and_the_frame_size_only() -> None:
    """Another preset or rate shares the prepared clip; another size or clip does not."""
    other_codec = EncodeSettings(640, 360, 30, "ultrafast", 28)
    assert prepared_key("a" * 64, SETTINGS) == prepared_key("a" * 64, other_codec)
    assert prepared_key("a" * 64, SETTINGS) != prepared_key("b" * 64, SETTINGS)
    assert prepared_key("a" * 64, SETTINGS) != prepared_key("a" * 64, EncodeSettings(1280, 720, 24))


def test_a_clip_run_decodes_once_and_feeds_the_prepared_copy_and_each_body() -> None:
    """One input, one scale, split three ways; each body trimmed, timed, cut into chunks."""
    span = SourceSpan(CLIP, 1.25, 1.1, True)
    first = (Piece("segment", 0, 0, 24, (span,)), Piece("segment", 0, 24, 10, (span,)))
    second = (Piece("segment", 3, 0, 24, (SourceSpan(CLIP, 0.0, 0.9, False),)),)
    bodies = [BodyOutput(first, Path("/s/b0-%04d.h264")), BodyOutput(second, Path("/s/b1.h264"))]
    args = clip_run_args(SOURCE, SETTINGS, Path("/s/prepared.mp4"), bodies,
                         source_fps=30, font=None, text_dir=Path("/t"))  # fmt: skip
    assert args.count("-i") == 1
    chains = args[args.index("-filter_complex") + 1].split(";")
    assert chains[0].endswith("format=yuv420p,split=3[m][b0][b1]")
    assert chains[1] == (
        "[b0]trim=start=1.250000,setpts=(PTS-1.250000/TB)/1.100000,fps=24:start_time=0,"
        "setsar=1,hflip,tpad=stop=-1:stop_mode=clone,setpts=N/24/TB,trim=end_frame=34[v0]"
    )
    assert chains[2].startswith("[b1]trim=start=0.000000,setpts=(PTS)/0.900000")
    assert args[args.index("[v0]") + 2] == "34"
    assert args[args.index("-segment_frames") + 1] == "24"
    assert args[-1] == "/s/b1.h264"
    assert args[args.index("[m]", args.index("-filter_complex") + 2) + 1 :].index("/s/prepared.mp4")


def test_a_clip_run_refuses_bodies_it_cannot_trim() -> None:
    """A lead-in (negative start) or another clip's body belongs to a normal piece run."""
    early = (Piece("segment", 0, 0, 24, (SourceSpan(CLIP, -0.2, 1.0, False),)),)
    with pytest.raises(ValueError, match="non-negative"):
        clip_run_args(SOURCE, SETTINGS, Path("/s/p.mp4"),
                      [BodyOutput(early, Path("/s/b.h264"))], source_fps=30, font=None,
                      text_dir=Path("/t"))  # fmt: skip
    other = ClipFile(Path("/work/in/b.mp4"), "b" * 64, demuxer="mov")
    mixed = [BodyOutput((_segment(),), Path("/s/b0.h264")),
             BodyOutput((Piece("segment", 1, 0, 24, (SourceSpan(other, 0, 1, False),)),),
                        Path("/s/b1.h264"))]  # fmt: skip
    with pytest.raises(ValueError, match="one clip"):
        clip_run_args(SOURCE, SETTINGS, Path("/s/p.mp4"), mixed, source_fps=30,
                      font=None, text_dir=Path("/t"))  # fmt: skip


def test_runs_sharing_the_cores_decode_and_filter_on_one_thread_each() -> None:
    """With x264 on one thread (parallel runs), each input decodes and the graph filters on one
    thread too; with x264 left to choose (serial runs), FFmpeg's defaults stay."""
    shared = EncodeSettings(640, 360, 24, "veryfast", 21, threads=1)
    window = Piece("transition", 1, 0, 12, (SourceSpan(CLIP, 2.0, 1.0, False),
                                            SourceSpan(CLIP, 0.0, 1.0, False)), "fade")  # fmt: skip
    args = stretch_args([window], shared, Path("/o.h264"), font=None, text_dir=Path("/t"))
    inputs = [i for i, arg in enumerate(args) if arg == "-i"]
    assert len(inputs) == 2
    assert all(args[args.index("-threads", at - 9) + 1] == "1" for at in inputs)
    assert args[args.index("-filter_complex_threads") + 1] == "1"
    assert args[args.index("-c:v") + 2 : args.index("-c:v") + 4] == ["-threads", "1"]
    serial = stretch_args([window], SETTINGS, Path("/o.h264"), font=None, text_dir=Path("/t"))
    assert "-filter_complex_threads" not in serial
    assert serial.count("-threads") == 1  # x264's own, 0: x264 decides
