"""Process plumbing shared by the station daemon (`edge`) and the hub (`central_sync`).

systemd notification and liveness; it imports neither `edge` nor `central_sync`, so both may use it.
"""
