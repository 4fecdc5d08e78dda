#!/usr/bin/env bash
# Regenerates the bundled sample assets with ffmpeg. The outputs are committed,
# so this only needs to run when the sample itself should change.
#
#   assets/sample/sample.mp4      16 s, 640x360 25 fps H.264 High (B-frames),
#                                 AAC-LC stereo 48 kHz, keyframe every 2 s,
#                                 moov at the front (faststart)
#   assets/sample/hls/            the same clip pre-packaged by ffmpeg as HLS fMP4
#   assets/sample/dash/           the same clip pre-packaged by ffmpeg as DASH
set -euo pipefail
cd "$(dirname "$0")/sample" 2>/dev/null || { mkdir -p "$(dirname "$0")/sample"; cd "$(dirname "$0")/sample"; }

ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }

ff -f lavfi -i "testsrc2=size=640x360:rate=25" \
   -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" \
   -t 16 -map 0:v -map 1:a \
   -c:v libx264 -profile:v high -preset medium -pix_fmt yuv420p \
   -b:v 450k -maxrate 700k -bufsize 900k \
   -g 50 -keyint_min 50 -sc_threshold 0 -bf 3 \
   -c:a aac -b:a 96k -ac 2 \
   -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
   -movflags +faststart sample.mp4

rm -rf hls dash
mkdir -p hls dash

ff -i sample.mp4 -map 0 -c copy \
   -f hls -hls_time 4 -hls_playlist_type vod -hls_segment_type fmp4 \
   -hls_fmp4_init_filename init.mp4 -hls_segment_filename 'hls/seg_%03d.m4s' \
   -master_pl_name master.m3u8 hls/media.m3u8

ff -i sample.mp4 -map 0 -c copy \
   -f dash -seg_duration 4 -use_template 1 -use_timeline 1 \
   -init_seg_name 'init-$RepresentationID$.m4s' \
   -media_seg_name 'chunk-$RepresentationID$-$Number%05d$.m4s' \
   dash/manifest.mpd

ls -l sample.mp4 hls dash
