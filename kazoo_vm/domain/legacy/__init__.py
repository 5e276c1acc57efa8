"""Legacy (pre-4.0) voicemail: reading box ``messages`` arrays and migrating one box's entries into MODB documents.

The rules live here, below both faces that use them: the message API (an old id touched through the API) and the
batch migrator in :mod:`kazoo_vm.migrate`.
"""
