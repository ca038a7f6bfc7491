# `cmake --install`: the Debian layout the systemd unit expects.
#   bin/                        pincerd, pincerctl, pincer-worker
#   lib/systemd/system/         pincerd.service (paths rewritten for the prefix)
#   lib/sysusers.d/             pincer.conf (the pincer system user)
#   /etc/pincer/pincer.yaml     the default config (kept if already there)
#   share/doc/pincer/           docs/*.md
#   share/pincer/prometheus/    alerts.yaml
# With --prefix /usr, SYSCONFDIR is /etc (GNUInstallDirs), as Debian wants.
include(GNUInstallDirs)

install(TARGETS pincerd pincerctl pincer-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The unit in the repo names /usr/bin and /etc/pincer; rewrite them for the
# chosen prefix so the installed unit points at the installed files.
set(_pincer_unit_src ${CMAKE_SOURCE_DIR}/packaging/systemd/pincerd.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_pincer_unit_src})
file(READ ${_pincer_unit_src} _pincer_unit)
string(REPLACE "/usr/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" _pincer_unit "${_pincer_unit}")
string(REPLACE "/etc/pincer/" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pincer/" _pincer_unit "${_pincer_unit}")
string(REPLACE "/usr/share/doc/pincer/" "${CMAKE_INSTALL_FULL_DOCDIR}/" _pincer_unit "${_pincer_unit}")
file(WRITE ${CMAKE_BINARY_DIR}/packaging/pincerd.service "${_pincer_unit}")
install(FILES ${CMAKE_BINARY_DIR}/packaging/pincerd.service
        DESTINATION lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/sysusers.d/pincer.conf DESTINATION lib/sysusers.d)

# An operator's edited config survives a reinstall: the new default then
# lands beside it as pincer.yaml.dist.
set(_pincer_conf_dir "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pincer")
set(_pincer_conf_src "${CMAKE_SOURCE_DIR}/packaging/pincer.yaml")
install(CODE "
  set(_dir \"\$ENV{DESTDIR}${_pincer_conf_dir}\")
  if(EXISTS \"\${_dir}/pincer.yaml\")
    message(STATUS \"Keeping: \${_dir}/pincer.yaml (new default: pincer.yaml.dist)\")
    file(INSTALL \"${_pincer_conf_src}\" DESTINATION \"\${_dir}\" RENAME pincer.yaml.dist)
  else()
    file(INSTALL \"${_pincer_conf_src}\" DESTINATION \"\${_dir}\")
  endif()
")

file(GLOB _pincer_docs ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${_pincer_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${CMAKE_SOURCE_DIR}/config/prometheus/alerts.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pincer/prometheus)
