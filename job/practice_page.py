"""The practice page: one static HTML file beside the video (docs/PRACTICE.md).

Pure string templating: no server, no network, no script or style from elsewhere, so the page
works opened from the file system. Every text from the blueprint (titles, section and move names)
is HTML-escaped; numbers are formatted by us. The page plays the video beside it, loops a section
or an 8-count (A-B on ``timeupdate``), sets the speed (``playbackRate`` with ``preservesPitch``),
mirrors the picture (CSS ``scaleX(-1)`` on the video only, its native controls hidden meanwhile
since they would be mirrored too) and draws the timeline as inline SVG.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from job.renditions import LoopSpan, loop_spans
from schemas.blueprint import Blueprint

SPEEDS = (0.5, 0.75, 1.0)
_SECTION_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def practice_page(
    blueprint: Blueprint, video_name: str, links: Sequence[tuple[str, str]] = ()
) -> str:
    """The page for ``blueprint``'s video, found at the relative URL ``video_name``.

    ``links`` are (label, relative file name) pairs of renditions to list for download.
    """
    fps = blueprint.video_output.fps
    spans = loop_spans(blueprint)
    title = f"Practice: {blueprint.song.title}"
    rows = "\n".join(_loop_button(span, fps) for span in spans)
    speed_buttons = "".join(
        f'<button type="button" class="speed" data-rate="{rate:g}">{rate:g}x</button>'
        for rate in SPEEDS
    )
    link_items = "".join(
        f'<li><a href="{escape(name, quote=True)}">{escape(label)}</a></li>'
        for label, name in links
    )
    downloads = f"<h2>Renditions</h2><ul>{link_items}</ul>" if links else ""
    return _TEMPLATE.format(
        title=escape(title),
        video=escape(video_name, quote=True),
        speeds=speed_buttons,
        loops=rows,
        timeline=timeline_svg(blueprint),
        downloads=downloads,
        script=_SCRIPT,
    )


def _loop_button(span: LoopSpan, fps: int) -> str:
    start, end = span.start_frame / fps, span.end_frame / fps
    # JSON numbers in data attributes: the script reads them with Number().
    return (
        f'<li class="{span.family}"><button type="button" class="loop" '
        f'data-start="{json.dumps(round(start, 3))}" data-end="{json.dumps(round(end, 3))}">'
        f'{escape(span.label)}</button> <span class="time">{_clock(start)}-{_clock(end)}'
        "</span></li>"
    )


def timeline_svg(blueprint: Blueprint) -> str:
    """Sections as coloured bands and moves as blocks named on hover, over the video's length."""
    length = blueprint.song.window.length_s
    width, parts = 1000.0, []
    for move in blueprint.moves_used:
        x = move.timeline_start_s / length * width
        w = max(move.span_s / length * width, 1.0)
        colour = _SECTION_COLOURS[move.section.index % len(_SECTION_COLOURS)]
        name = escape(f"{move.name} ({move.section.label}, {_clock(move.timeline_start_s)})")
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="40" fill="{colour}" '
            f'stroke="#fff"><title>{name}</title></rect>'
        )
    return (
        f'<svg id="timeline" viewBox="0 0 {width:g} 40" preserveAspectRatio="none" '
        f'role="img" aria-label="timeline">{"".join(parts)}'
        '<rect id="playhead" x="0" y="0" width="2" height="40" fill="#000"/></svg>'
    )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


_SCRIPT = """
const video = document.getElementById('video');
let loop = null;
function setLoop(start, end, button) {
  loop = {start: start, end: end};
  document.querySelectorAll('button.loop').forEach(b => b.classList.remove('on'));
  if (button) button.classList.add('on');
  video.currentTime = start;
  video.play().catch(() => {});
}
document.querySelectorAll('button.loop').forEach(button => {
  button.addEventListener('click', () =>
    setLoop(Number(button.dataset.start), Number(button.dataset.end), button));
});
document.getElementById('noloop').addEventListener('click', () => {
  loop = null;
  document.querySelectorAll('button.loop').forEach(b => b.classList.remove('on'));
});
video.addEventListener('timeupdate', () => {
  if (loop && (video.currentTime >= loop.end || video.currentTime < loop.start - 0.25)) {
    video.currentTime = loop.start;
  }
  const head = document.getElementById('playhead');
  if (head && video.duration) head.setAttribute('x', 1000 * video.currentTime / video.duration);
});
document.querySelectorAll('button.speed').forEach(button => {
  button.addEventListener('click', () => {
    video.preservesPitch = true;
    video.playbackRate = Number(button.dataset.rate);
    document.querySelectorAll('button.speed').forEach(b => b.classList.toggle('on', b === button));
  });
});
document.getElementById('mirror').addEventListener('click', () => {
  const on = video.classList.toggle('mirrored');
  // The native controls live inside the video element and would be mirrored with it.
  video.controls = !on;
  document.getElementById('mirror').setAttribute('aria-pressed', String(on));
});
document.getElementById('play').addEventListener('click', () => {
  if (video.paused) { video.play().catch(() => {}); } else { video.pause(); }
});
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; max-width: 1100px; }}
video {{ width: 100%; background: #000; }}
video.mirrored {{ transform: scaleX(-1); }}
button.on, button[aria-pressed="true"] {{ background: #333; color: #fff; }}
#timeline {{ width: 100%; height: 40px; display: block; margin: .5em 0; }}
ul.loops {{ columns: 3; list-style: none; padding: 0; }}
li.section {{ font-weight: bold; }}
.time {{ color: #666; font-size: 80%; }}
</style>
</head>
<body>
<h1>{title}</h1>
<video id="video" src="{video}" controls preload="auto"></video>
{timeline}
<p><button type="button" id="play">Play / pause</button> Speed: {speeds}
<button type="button" id="mirror" aria-pressed="false">Mirror</button>
<button type="button" id="noloop">Stop looping</button></p>
<h2>Loops</h2>
<ul class="loops">
{loops}
</ul>
{downloads}
<script>{script}</script>
</body>
</html>
"""
