"""The diagnostic limits: one declaration per measurement (read by `PhaseContext.measure`).

Limits that depend on the station (latency budget, nominal belt speed) are filled in by the
phase with `Spec.limited`; everything else is fixed here. Message keys name entries of
`edge/diag/messages/<lang>.json`.
"""

from __future__ import annotations

from edge.diag.core import Spec

_SPECS = (
    # links
    Spec("links.plc_round_trip_ms", "ms", "median Modbus read round trip", high=100, marginal_high=40,
         message="plc.slow_round_trip"),
    Spec("links.plc_heartbeat_age_ms", "ms", "age of the PLC heartbeat", high=500, marginal_high=300,
         message="plc.heartbeat_stale"),
    Spec("links.plc_link_ok", "", "PLC answers and its heartbeat runs", expect=True, message="plc.no_answer"),
    Spec("links.controller_hello", "", "X-ray controller session (HELLO) up", expect=True,
         message="controller.no_hello"),
    Spec("links.controller_protocol", "", "X-ray controller speaks this station's protocol version", expect=True,
         message="controller.protocol_version"),
    Spec("links.controller_status_ms", "ms", "median STATUS round trip", high=200, marginal_high=80,
         message="controller.slow"),
    Spec("links.controller_retries", "frames", "frames resent during 20 STATUS requests", high=2,
         marginal_high=0, message="controller.frame_errors"),
    Spec("links.controller_answers", "", "every STATUS request answered", expect=True,
         message="controller.no_answer"),
    Spec("links.reader_link_ok", "", "tag reader port open", expect=True, message="reader.unplugged"),
    Spec("links.source_ok", "", "retrofit image source opened", expect=True, message="source.lost"),
    # PLC I/O map
    Spec("io.eye_toggles", "", "photo-eye reports blocked then clear", expect=True, message="eye.no_toggle"),
    Spec("io.eye_response_ms", "ms", "beam interrupted -> edge seen by the host", high=100, marginal_high=40,
         message="eye.slow"),
    Spec("io.divert_ms", "ms", "divert request -> end-position feedback", high=400, marginal_high=250,
         message="divert.slow"),
    Spec("io.belt_speed_m_s", "m/s", "belt speed from the encoder", low=0.2, high=0.5,
         message="belt.speed"),
    Spec("io.belt_stop_ms", "ms", "stop request -> belt_running off", high=500, marginal_high=250,
         message="belt.slow_stop"),
    Spec("io.barrier_s", "s", "barrier request -> end-position feedback", high=4.0, marginal_high=3.0,
         message="barrier.slow"),
    Spec("io.light_confirmed", "", "traffic light feedback follows the request", expect=True,
         message="light.no_feedback"),
    # end-to-end tracking
    Spec("tracking.eye_to_scan_ms", "ms", "entry photo-eye -> scan started", high=500, marginal_high=200,
         message="tracking.slow_start"),
    Spec("tracking.scan_complete", "", "scan arrived complete", expect=True, message="tracking.scan_incomplete"),
    Spec("tracking.verdict_ms", "ms", "last scan line -> verdict", message="tracking.over_budget"),
    Spec("tracking.divert_margin_s", "s", "divert confirmed before the item reached the gate", low=0.0,
         marginal_low=0.5, message="tracking.divert_late"),
    Spec("tracking.right_item", "", "the item went where its verdict sent it", expect=True,
         message="tracking.wrong_item"),
    Spec("tracking.light_confirmed", "", "traffic light shows the verdict", expect=True,
         message="light.no_feedback"),
    # RFID
    Spec("rfid.reader_connected", "", "reader port open", expect=True, message="reader.unplugged"),
    Spec("rfid.frames_decode", "", "the reader's frames decode", expect=True, message="rfid.undecodable"),
    Spec("rfid.read_ok", "", "reference badge read", expect=True, message="rfid.no_read"),
    Spec("rfid.time_to_read_ms", "ms", "badge presented -> tag seen", high=1000, marginal_high=400,
         message="rfid.slow_read"),
    Spec("rfid.right_tag", "", "the tag read is the reference badge", expect=True, message="rfid.wrong_tag"),
    # cameras: focus and exposure on the test target held in front of each camera, and its read
    Spec("cameras.link_ok", "", "camera stream open", expect=True, message="camera.lost"),
    Spec("cameras.frames", "", "frames of the test target arrived", expect=True, message="camera.no_frames"),
    Spec("cameras.focus", "", "variance of the Laplacian on the test target", low=60, marginal_low=120,
         message="camera.defocused"),
    Spec("cameras.exposure_mean", "grey", "mean grey level", low=30, high=210, marginal_low=50, marginal_high=190,
         message="camera.exposure"),
    Spec("cameras.clipped_share", "", "share of pixels clipped black or white", high=0.05, marginal_high=0.02,
         message="camera.clipped"),
    Spec("cameras.test_read", "", "the test plate or container code read right", expect=True,
         message="camera.misread"),
    # UHF readers over LLRP
    Spec("llrp.connected", "", "LLRP session up", expect=True, message="llrp.no_session"),
    Spec("llrp.antenna_connected", "", "configured antenna reported connected", expect=True,
         message="llrp.antenna_off"),
    Spec("llrp.test_tag_seen", "", "test tag read at the antenna", expect=True, message="llrp.no_tag"),
    Spec("llrp.test_tag_rssi_dbm", "dBm", "peak RSSI of the test tag", low=-70, marginal_low=-62,
         message="llrp.weak_tag"),
    # image quality (ASTM F792 manner)
    Spec("imaging.wire_mm", "mm", "thinnest copper wire visible behind steel", high=0.4, marginal_high=0.32,
         message="imaging.wire"),
    Spec("imaging.penetration_mm", "mm", "thickest steel step still resolved", low=12, marginal_low=16,
         message="imaging.penetration"),
    Spec("imaging.resolution_mm", "mm", "finest bar width resolved", high=2.0, marginal_high=1.5,
         message="imaging.resolution"),
    Spec("imaging.material_accuracy", "", "organic/inorganic/metal blocks classified right", low=0.85,
         marginal_low=0.95, message="imaging.material"),
    Spec("imaging.baseline_ratio", "", "score against this station's baseline", low=0.8, marginal_low=0.9,
         message="imaging.drift"),
    Spec("imaging.scan_complete", "", "test-object scan arrived complete", expect=True,
         message="tracking.scan_incomplete"),
    # inference
    Spec("inference.model_loaded", "", "model package verified and loaded", expect=True,
         message="model.unavailable"),
    Spec("inference.tile_ms", "ms", "one tile through the model", high=500, marginal_high=150,
         message="inference.slow_tile"),
    Spec("inference.scan_ms", "ms", "whole scan, 95th percentile", message="inference.over_budget"),
    # clock
    Spec("clock.drift_ppm", "ppm", "wall clock against the monotonic clock", low=-500, high=500,
         marginal_low=-100, marginal_high=100, message="clock.drift"),
    Spec("clock.wall_sane", "", "wall clock shows a plausible date", expect=True, message="clock.insane"),
    # hub
    Spec("hub.reachable", "", "broker of the hub accepts the station", expect=True, message="hub.unreachable"),
    Spec("hub.round_trip_ms", "ms", "publish -> delivery through the hub's broker", high=1000,
         marginal_high=300, message="hub.slow"),
    # safety proof tests
    Spec("safety.trip_seen", "", "safety input reads tripped", expect=True, message="safety.not_seen"),
    Spec("safety.belt_stop_ms", "ms", "trip -> belt stopped", high=250, marginal_high=100,
         message="safety.slow_belt"),
    Spec("safety.permit_drop_ms", "ms", "trip -> X-ray permit dropped", high=250, marginal_high=100,
         message="safety.slow_permit"),
    Spec("safety.controller_disarmed", "", "controller disarmed by the open interlock", expect=True,
         message="safety.controller_armed"),
    Spec("safety.permit_refused", "", "X-ray permit refused while tripped", expect=True,
         message="safety.permit_granted"),
    Spec("safety.no_restart", "", "nothing restarts after reset", expect=True, message="safety.restarted"),
    # fault drills: degraded-safe behaviour and recovery
    Spec("drill.safe_while_faulted", "", "items to manual, no belt, no permit during the fault", expect=True,
         message="drill.unsafe"),
    Spec("drill.detected_ms", "ms", "fault -> host reports the link lost", high=2000, marginal_high=1000,
         message="drill.slow_detect"),
    Spec("drill.recovered_ms", "ms", "fault cleared -> link back", high=3000, marginal_high=1500,
         message="drill.slow_recovery"),
    Spec("drill.diagnosed", "", "the affected phase failed with the fault's diagnosis, and only with it",
         expect=True, message="drill.not_diagnosed"),
    Spec("drill.no_restart", "", "nothing restarted by itself after recovery", expect=True,
         message="safety.restarted"),
)

SPECS: dict[str, Spec] = {s.name: s for s in _SPECS}
