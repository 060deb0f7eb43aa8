! Physical constants and fixed dimensions of the colmda column core.
! Values follow CoLM202X (MOD_Const_Physical, MOD_Vars_Global) unless noted.
module colm_const
  use iso_c_binding, only: c_double, c_int
  implicit none
  private :: c_double, c_int

  integer, parameter :: r8 = c_double          ! real kind used everywhere (f2py maps c_double to C double)
  integer, parameter :: ik = c_int             ! integer kind used at the API boundary

  ! ---- dimensions ----
  integer, parameter :: nl_soil = 10           ! number of soil layers (-)
  integer, parameter :: maxsnl = -5            ! minus the maximum number of snow layers (-)
  integer, parameter :: nsnow_max = 5          ! maximum number of snow layers (-)
  integer, parameter :: nlev = nsnow_max + nl_soil  ! snow + soil levels in a layered state array (-)

  ! ---- physical constants ----
  real(r8), parameter :: pi      = 3.14159265358979323846_r8 ! (-)
  real(r8), parameter :: tfrz    = 273.16_r8     ! freezing temperature of water (K)
  real(r8), parameter :: hfus    = 3.3360e5_r8   ! latent heat of fusion (J kg-1)
  real(r8), parameter :: hvap    = 2.5104e6_r8   ! latent heat of evaporation (J kg-1)
  real(r8), parameter :: hsub    = hvap + hfus   ! latent heat of sublimation (J kg-1)
  real(r8), parameter :: denh2o  = 1000.0_r8     ! density of liquid water (kg m-3)
  real(r8), parameter :: denice  = 917.0_r8      ! density of ice (kg m-3)
  real(r8), parameter :: cpliq   = 4188.0_r8     ! specific heat of liquid water (J kg-1 K-1)
  real(r8), parameter :: cpice   = 2117.27_r8    ! specific heat of ice (J kg-1 K-1)
  real(r8), parameter :: cpair   = 1004.64_r8    ! specific heat of dry air at constant pressure (J kg-1 K-1)
  real(r8), parameter :: rgas    = 287.04_r8     ! gas constant of dry air (J kg-1 K-1)
  real(r8), parameter :: rwat    = 461.296_r8    ! gas constant of water vapour (J kg-1 K-1)
  real(r8), parameter :: tkwat   = 0.6_r8        ! thermal conductivity of liquid water (W m-1 K-1)
  real(r8), parameter :: tkice   = 2.290_r8      ! thermal conductivity of ice (W m-1 K-1)
  real(r8), parameter :: tkair   = 0.023_r8      ! thermal conductivity of air (W m-1 K-1)
  real(r8), parameter :: grav    = 9.80616_r8    ! gravitational acceleration (m s-2)
  real(r8), parameter :: stefnc  = 5.67e-8_r8    ! Stefan-Boltzmann constant (W m-2 K-4)
  real(r8), parameter :: vonkar  = 0.4_r8        ! von Karman constant (-)

  ! ---- CoLM tunables ----
  real(r8), parameter :: zlnd    = 0.01_r8       ! roughness length of bare soil (m)
  real(r8), parameter :: zsno    = 0.0024_r8     ! roughness length of snow (m)
  real(r8), parameter :: capr    = 0.34_r8       ! tuning factor: surface-layer temperature to node temperature (-)
  real(r8), parameter :: cnfac   = 0.5_r8        ! Crank-Nicolson weight (-)
  real(r8), parameter :: ssi     = 0.033_r8      ! irreducible water saturation of snow (-)
  real(r8), parameter :: csoilc  = 0.004_r8      ! drag coefficient, soil under canopy (-)
  real(r8), parameter :: wimp    = 0.05_r8       ! water impermeable below this effective porosity (-)
  real(r8), parameter :: pondmx  = 10.0_r8       ! maximum ponded water depth before runoff (kg m-2)
  real(r8), parameter :: smpmin  = -1.0e8_r8     ! minimum soil matric potential (mm)
  real(r8), parameter :: trsmx0  = 2.0e-4_r8     ! maximum transpiration rate (kg m-2 s-1)
  real(r8), parameter :: snow_min_depth = 0.01_r8 ! snow depth at which the first snow layer appears (m)
end module colm_const
