! Index layout of the packed arrays that cross the API boundary.
! Python mirrors these names in colmda/layout.py; tests/test_core_api.py checks the two agree.
module colm_layout
  implicit none

  ! ---- column scalar state cstate(NCS, ncol) ----
  integer, parameter :: CS_TGRND   = 1   ! ground surface (top layer) temperature (K)
  integer, parameter :: CS_TLEAF   = 2   ! leaf temperature (K)
  integer, parameter :: CS_LDEW    = 3   ! water (liquid + snow) intercepted on the canopy (kg m-2)
  integer, parameter :: CS_SCV     = 4   ! snow water equivalent, all snow (kg m-2)
  integer, parameter :: CS_SNOWDP  = 5   ! snow depth (m)
  integer, parameter :: CS_SNOWAGE = 6   ! non-dimensional snow age (-)
  integer, parameter :: CS_WA      = 7   ! water stored in the unconfined aquifer (kg m-2)
  integer, parameter :: CS_ZWT     = 8   ! water table depth below the surface (m)
  integer, parameter :: CS_WDSRF   = 9   ! ponded surface water (kg m-2)
  integer, parameter :: NCS        = 9

  ! ---- soil parameters per layer soilpar(NSP, nl_soil, ncol) ----
  integer, parameter :: SP_THETA_S  = 1  ! porosity / saturated water content (m3 m-3)
  integer, parameter :: SP_THETA_R  = 2  ! residual water content (m3 m-3)
  integer, parameter :: SP_KSAT     = 3  ! saturated hydraulic conductivity (mm s-1)
  integer, parameter :: SP_PSI_S    = 4  ! Campbell saturated matric potential (mm, negative)
  integer, parameter :: SP_BSW      = 5  ! Campbell / Clapp-Hornberger exponent b (-)
  integer, parameter :: SP_ALPHA_VG = 6  ! van Genuchten alpha (mm-1)
  integer, parameter :: SP_N_VG     = 7  ! van Genuchten n (-)
  integer, parameter :: SP_L_VG     = 8  ! Mualem pore-connectivity L (-)
  integer, parameter :: SP_CSOL     = 9  ! volumetric heat capacity of the soil solids (J m-3 K-1)
  integer, parameter :: SP_TKDRY    = 10 ! thermal conductivity of dry soil (W m-1 K-1)
  integer, parameter :: SP_TKSATU   = 11 ! thermal conductivity of saturated unfrozen soil (W m-1 K-1)
  integer, parameter :: SP_TKSATF   = 12 ! thermal conductivity of saturated frozen soil (W m-1 K-1)
  integer, parameter :: SP_ROOTFR   = 13 ! fraction of roots in the layer (-)
  integer, parameter :: SP_PSI_E    = 14 ! air-entry potential of the vG air-entry form (mm, < 0; >= 0: -1 mm)
  integer, parameter :: NSP         = 14

  ! ---- vegetation (PFT) parameters vegpar(NVP, ncol) ----
  integer, parameter :: VP_ISVEG    = 1  ! 1 vegetated, 0 bare soil (-)
  integer, parameter :: VP_HTOP     = 2  ! canopy top height (m)
  integer, parameter :: VP_Z0M      = 3  ! momentum roughness length of the canopy (m)
  integer, parameter :: VP_DISPLA   = 4  ! zero-plane displacement height (m)
  integer, parameter :: VP_DLEAF    = 5  ! characteristic leaf dimension (m)
  integer, parameter :: VP_CHIL     = 6  ! leaf angle distribution index, Ross-Goudriaan chi_L (-)
  integer, parameter :: VP_RHO_VIS  = 7  ! leaf reflectance, visible (-)
  integer, parameter :: VP_RHO_NIR  = 8  ! leaf reflectance, near infrared (-)
  integer, parameter :: VP_TAU_VIS  = 9  ! leaf transmittance, visible (-)
  integer, parameter :: VP_TAU_NIR  = 10 ! leaf transmittance, near infrared (-)
  integer, parameter :: VP_C3       = 11 ! 1 for C3 photosynthesis, 0 for C4 (-)
  integer, parameter :: VP_VCMAX25  = 12 ! maximum carboxylation rate at 25 C, canopy top (mol CO2 m-2 s-1)
  integer, parameter :: VP_EFFCON   = 13 ! quantum efficiency (mol CO2 mol-1 photon)
  integer, parameter :: VP_G1       = 14 ! Ball-Berry slope m (-)
  integer, parameter :: VP_G0       = 15 ! Ball-Berry intercept b (mol H2O m-2 s-1)
  integer, parameter :: VP_EXTKN    = 16 ! nitrogen (Vcmax) extinction coefficient in the canopy (-)
  integer, parameter :: VP_SMPSO    = 17 ! soil matric potential at which stomata start to close (mm)
  integer, parameter :: VP_SMPSC    = 18 ! soil matric potential at which stomata are closed (mm)
  integer, parameter :: VP_LAIMX    = 19 ! crops: LAI of full height, htop = VP_HTOP min(LAI/(laimx-1),1)^2 (m2 m-2);
                                         ! 0 = fixed height
  integer, parameter :: NVP         = 19

  ! ---- column parameters colpar(NCP, ncol) ----
  integer, parameter :: CP_LAI        = 1 ! leaf area index (m2 m-2)
  integer, parameter :: CP_SAI        = 2 ! stem area index (m2 m-2)
  integer, parameter :: CP_ZREF       = 3 ! height of the forcing above the ground (m)
  integer, parameter :: CP_ALBSAT_VIS = 4 ! saturated soil albedo, visible (-)
  integer, parameter :: CP_ALBSAT_NIR = 5 ! saturated soil albedo, near infrared (-)
  integer, parameter :: CP_ALBDRY_VIS = 6 ! dry soil albedo, visible (-)
  integer, parameter :: CP_ALBDRY_NIR = 7 ! dry soil albedo, near infrared (-)
  integer, parameter :: NCP           = 7

  ! ---- forcing forc(NF, nsteps, ncol): step means (precipitation, radiation) or step-centred values ----
  integer, parameter :: F_TAIR   = 1 ! air temperature at zref (K)
  integer, parameter :: F_QAIR   = 2 ! specific humidity at zref (kg kg-1)
  integer, parameter :: F_PSURF  = 3 ! surface pressure (Pa)
  integer, parameter :: F_PREC   = 4 ! total precipitation rate (kg m-2 s-1)
  integer, parameter :: F_WIND   = 5 ! wind speed at zref (m s-1)
  integer, parameter :: F_SWDOWN = 6 ! downward shortwave radiation (W m-2)
  integer, parameter :: F_LWDOWN = 7 ! downward longwave radiation (W m-2)
  integer, parameter :: F_COSZEN = 8 ! cosine of the solar zenith angle, mid-step (-)
  integer, parameter :: NF       = 8

  ! ---- diagnostics diag(ND, nout, ncol): means over each output interval ----
  integer, parameter :: D_SWNET     = 1  ! net shortwave radiation, downward (W m-2)
  integer, parameter :: D_LWNET     = 2  ! net longwave radiation, downward (W m-2)
  integer, parameter :: D_QLE       = 3  ! latent heat flux, upward (W m-2)
  integer, parameter :: D_QH        = 4  ! sensible heat flux, upward (W m-2)
  integer, parameter :: D_QG        = 5  ! ground heat flux, downward into snow/soil (W m-2)
  integer, parameter :: D_EVAP      = 6  ! total evapotranspiration, upward (kg m-2 s-1)
  integer, parameter :: D_TVEG      = 7  ! transpiration (kg m-2 s-1)
  integer, parameter :: D_ESOIL     = 8  ! evaporation from the soil and ponded water (kg m-2 s-1)
  integer, parameter :: D_ECANOP    = 9  ! evaporation of intercepted water (kg m-2 s-1)
  integer, parameter :: D_SUBSNOW   = 10 ! evaporation + sublimation from snow on the ground (kg m-2 s-1)
  integer, parameter :: D_QS        = 11 ! surface runoff (kg m-2 s-1)
  integer, parameter :: D_QSB       = 12 ! subsurface runoff / baseflow (kg m-2 s-1)
  integer, parameter :: D_QSM       = 13 ! snowmelt (kg m-2 s-1)
  integer, parameter :: D_RAINF     = 14 ! rainfall rate (kg m-2 s-1)
  integer, parameter :: D_SNOWF     = 15 ! snowfall rate (kg m-2 s-1)
  integer, parameter :: D_SWE       = 16 ! snow water equivalent (kg m-2)
  integer, parameter :: D_SNOWDEPTH = 17 ! snow depth (m)
  integer, parameter :: D_SNOWFRAC  = 18 ! snow covered fraction (-)
  integer, parameter :: D_AVGSURFT  = 19 ! average surface (ground/snow) temperature (K)
  integer, parameter :: D_RADT      = 20 ! radiative surface temperature (K)
  integer, parameter :: D_ALBEDO    = 21 ! surface albedo (-)
  integer, parameter :: D_CANOPINT  = 22 ! canopy interception storage (kg m-2)
  integer, parameter :: D_ZWT       = 23 ! water table depth (m)
  integer, parameter :: D_WA        = 24 ! aquifer water storage (kg m-2)
  integer, parameter :: D_POND      = 25 ! ponded surface water (kg m-2)
  integer, parameter :: D_TWS       = 26 ! total column water storage (kg m-2)
  integer, parameter :: D_GPP       = 27 ! gross primary production (kg C m-2 s-1)
  integer, parameter :: D_VEGT      = 28 ! leaf temperature (K)
  integer, parameter :: D_WBAL_ERR  = 29 ! water balance residual, storage change minus net input (kg m-2 s-1)
  integer, parameter :: D_EBAL_ERR  = 30 ! surface energy balance residual (W m-2)
  integer, parameter :: D_SOILH_ERR = 31 ! snow/soil heat balance residual (W m-2)
  integer, parameter :: D_LEAF_RES  = 32 ! leaf energy balance residual at convergence (W m-2)
  integer, parameter :: D_HEATC     = 33 ! snow + soil heat content relative to ice at tfrz (J m-2)
  integer, parameter :: D_BTRAN     = 34 ! soil water stress factor for transpiration (-)
  integer, parameter :: ND          = 34

  ! ---- per-layer soil diagnostics diag_soil(NDS, nl_soil, nout, ncol) ----
  integer, parameter :: DS_SOILMOIST = 1 ! soil water, liquid + ice (kg m-2)
  integer, parameter :: DS_SOILTEMP  = 2 ! soil temperature (K)
  integer, parameter :: DS_SOILICE   = 3 ! soil ice (kg m-2)
  integer, parameter :: NDS          = 3
end module colm_layout
