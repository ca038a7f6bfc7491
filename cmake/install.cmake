# `cmake --install`: the Debian layout the systemd unit expects.
#   bin/                        pincerd, pincerctl, pincer-worker
#   lib/systemd/system/         pincerd.service, pincer-worker@.service (paths rewritten for the prefix)
#   lib/sysusers.d/             pincer.conf (the pincer system user)
#   /etc/pincer/pincer.yaml     the default config (kept if already there)
#   share/doc/pincer/           README.md, LICENSE, docs/*.md
#   share/doc/pincer/workers/python/  the Python worker library and its example
#   share/pincer/prometheus/    alerts.yaml
#   share/pincer/               openclaw-setup, openclaw-replica (docs/openclaw.md)
#   share/pincer/examples/      openclaw.yaml, openclaw.json
# With --prefix /usr (Debian), the config goes to /etc/pincer.
include(GNUInstallDirs)

install(TARGETS pincerd pincerctl pincer-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The unit in the repo names /usr/bin, /etc/pincer and /usr/share/doc; at
# install time (so that `cmake --install --prefix P` works too) rewrite them
# for the prefix, so the installed unit points at the installed files.
# Like GNUInstallDirs, prefix /usr keeps its config in /etc. An operator's
# edited config survives a reinstall: the new default then lands beside it
# as pincer.yaml.dist.
install(CODE "
  set(_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(_prefix STREQUAL \"/usr\")
    set(_etc \"/etc\")
  else()
    set(_etc \"\${_prefix}/etc\")
  endif()
  file(READ \"${CMAKE_SOURCE_DIR}/packaging/systemd/pincerd.service\" _unit)
  string(REPLACE \"/usr/bin/\" \"\${_prefix}/bin/\" _unit \"\${_unit}\")
  string(REPLACE \"/etc/pincer/\" \"\${_etc}/pincer/\" _unit \"\${_unit}\")
  string(REPLACE \"/usr/share/doc/pincer/\" \"\${_prefix}/share/doc/pincer/\" _unit \"\${_unit}\")
  file(WRITE \"${CMAKE_BINARY_DIR}/packaging/pincerd.service\" \"\${_unit}\")
  file(INSTALL \"${CMAKE_BINARY_DIR}/packaging/pincerd.service\"
       DESTINATION \"\${_prefix}/lib/systemd/system\")
  # The worker unit template (docs/deploy.md), rewritten the same way.
  file(READ \"${CMAKE_SOURCE_DIR}/packaging/systemd/pincer-worker@.service\" _unit)
  string(REPLACE \"/usr/bin/\" \"\${_prefix}/bin/\" _unit \"\${_unit}\")
  string(REPLACE \"/etc/pincer/\" \"\${_etc}/pincer/\" _unit \"\${_unit}\")
  string(REPLACE \"/usr/share/doc/pincer/\" \"\${_prefix}/share/doc/pincer/\" _unit \"\${_unit}\")
  file(WRITE \"${CMAKE_BINARY_DIR}/packaging/pincer-worker@.service\" \"\${_unit}\")
  file(INSTALL \"${CMAKE_BINARY_DIR}/packaging/pincer-worker@.service\"
       DESTINATION \"\${_prefix}/lib/systemd/system\")

  if(EXISTS \"\$ENV{DESTDIR}\${_etc}/pincer/pincer.yaml\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}\${_etc}/pincer/pincer.yaml (new default: pincer.yaml.dist)\")
    file(INSTALL \"${CMAKE_SOURCE_DIR}/packaging/pincer.yaml\" DESTINATION \"\${_etc}/pincer\"
         RENAME pincer.yaml.dist)
  else()
    file(INSTALL \"${CMAKE_SOURCE_DIR}/packaging/pincer.yaml\" DESTINATION \"\${_etc}/pincer\")
  endif()
")
install(FILES ${CMAKE_SOURCE_DIR}/packaging/sysusers.d/pincer.conf DESTINATION lib/sysusers.d)

file(GLOB _pincer_docs ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${_pincer_docs} ${CMAKE_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The README links docs/X.md; installed, the docs lie beside it.
install(CODE "
  file(READ \"${CMAKE_SOURCE_DIR}/README.md\" _readme)
  string(REPLACE \"](docs/\" \"](\" _readme \"\${_readme}\")
  file(WRITE \"${CMAKE_BINARY_DIR}/packaging/README.md\" \"\${_readme}\")
")
install(FILES ${CMAKE_BINARY_DIR}/packaging/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/workers/python DESTINATION ${CMAKE_INSTALL_DOCDIR}/workers
        PATTERN "__pycache__" EXCLUDE PATTERN "*.pyc" EXCLUDE)
install(FILES ${CMAKE_SOURCE_DIR}/config/prometheus/alerts.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pincer/prometheus)
# OpenClaw pools (docs/openclaw.md): the installer and the per-replica
# launcher config/examples/openclaw.yaml names, with that example.
install(PROGRAMS ${CMAKE_SOURCE_DIR}/scripts/openclaw-setup ${CMAKE_SOURCE_DIR}/scripts/openclaw-replica
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pincer)
install(FILES ${CMAKE_SOURCE_DIR}/config/examples/openclaw.yaml ${CMAKE_SOURCE_DIR}/config/examples/openclaw.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pincer/examples)
