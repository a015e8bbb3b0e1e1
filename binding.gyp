{
  "targets": [
    {
      "target_name": "cluster_store",
      "sources": [
        "src/addon.c",
        "src/addon_channel.c",
        "src/addon_channel_input.c",
        "src/addon_handoff.c",
        "src/addon_uplink.c",
        "src/broker.c",
        "src/broker_bind.c",
        "src/broker_conn.c",
        "src/broker_handoff.c",
        "src/broker_pace.c",
        "src/broker_pool.c",
        "src/broker_presence.c",
        "src/broker_retain.c",
        "src/broker_topic.c",
        "src/buffer.c",
        "src/channel.c",
        "src/channel_handoff.c",
        "src/channel_input.c",
        "src/channel_pool.c",
        "src/channel_wait.c",
        "src/expiry.c",
        "src/fdpass.c",
        "src/frame.c",
        "src/kv.c",
        "src/retain.c",
        "src/resp.c",
        "src/shm.c",
        "src/table.c",
        "src/uplink.c",
        "src/uplink_link.c",
        "src/uplink_request.c",
        "src/uplink_owner.c",
        "src/uplink_claim.c",
        "src/uplink_note.c",
        "src/uplink_topic.c",
        "src/uplink_member.c",
        "src/uplink_wire.c"
      ],
      "cflags_c": ["-std=c11", "-Wall", "-Wextra", "-O2"],
      "cflags!": ["-fno-exceptions"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=c11", "-Wall", "-Wextra", "-O2"]
      }
    }
  ]
}
